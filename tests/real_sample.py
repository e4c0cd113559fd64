"""Where the tests find the real 50-episode BridgeData RLDS sample: only through the variable BDV2_RLDS_SAMPLE,
never a default path outside the repository. `.ci/run` sets it to ../shared/data/bridge_rlds_debug when that
folder exists beside the checkout. Unset, or set to a folder without the dataset, the tests that use it skip
and say which of the two it was (`SKIP_REASON`); the generated release-shaped dataset covers the same code.
"""

from __future__ import annotations

import os
from pathlib import Path

VARIABLE = "BDV2_RLDS_SAMPLE"
_value = os.environ.get(VARIABLE, "")
PATH: Path | None = Path(_value).expanduser() if _value else None
"""The RLDS dataset directory (dataset_info.json, features.json, shards), or None when the variable is unset."""
SKIP_REASON = (f"real RLDS sample not found at {PATH} ({VARIABLE})" if PATH is not None else
               f"real RLDS sample not configured: set {VARIABLE} to the dataset directory "
               "(e.g. bridge_rlds_debug)")


def present() -> bool:
    """Whether the variable names a dataset directory that is there."""
    return PATH is not None and (PATH / "dataset_info.json").is_file() and (PATH / "features.json").is_file()
