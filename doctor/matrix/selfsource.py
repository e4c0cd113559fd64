"""Where the running bdv2 came from, so `bdv2 matrix verify` installs the same bdv2 into each row's venv.

pip records the origin of every distribution it installs from a URL, a local file or a folder in the
distribution's ``direct_url.json`` (PEP 610,
https://packaging.python.org/en/latest/specifications/direct-url/ ; the data structure is at
https://packaging.python.org/en/latest/specifications/direct-url-data-structure/). A bdv2 installed by
name from an index has no such file: the same version is then asked of the index (``bdv2==<version>``).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, assert_never
from urllib.parse import unquote, urlparse

from ..errors import DoctorError


class SourceKind(enum.Enum):
    """How the running bdv2 was installed (which key of direct_url.json, or none)."""

    LOCAL_DIR = "local folder"
    """``dir_info``: ``pip install .`` or ``pip install -e .``."""
    LOCAL_FILE = "local wheel or sdist"
    """``archive_info`` with a ``file://`` URL."""
    REMOTE_ARCHIVE = "archive URL"
    """``archive_info`` with an http(s) URL."""
    VCS = "version control"
    """``vcs_info``: ``pip install git+https://...``."""
    INDEX = "package index"
    """No direct_url.json: installed by name, so the same version by name."""


@dataclass(frozen=True)
class SelfSource:
    """What to give ``pip install`` in another venv to get this same bdv2."""

    kind: SourceKind
    spec: str
    """A path, a URL or ``bdv2==<version>``: one pip requirement argument."""
    version: str

    def describe(self) -> str:
        return f"bdv2 {self.version} from {self.kind.value}: {self.spec}"

    def install_hint(self) -> str:
        """Said when installing ``spec`` failed: how to give verify a bdv2 it can install."""
        match self.kind:
            case SourceKind.INDEX:
                return (f"bdv2 {self.version} is not on the package index this pip uses; run `bdv2 matrix verify` "
                        "from a bdv2 installed from a wheel, an sdist or a source folder "
                        "(`python -m build --wheel`, then `pip install dist/bdv2-*.whl`)")
            case SourceKind.LOCAL_DIR | SourceKind.LOCAL_FILE | SourceKind.REMOTE_ARCHIVE | SourceKind.VCS:
                return f"pip could not install {self.spec}, where the running bdv2 was installed from"
            case _:
                assert_never(self.kind)


class SelfSourceError(DoctorError):
    """No way to install the running bdv2 elsewhere (it is not an installed distribution at all)."""


def self_source(dist_name: str = "bdv2") -> SelfSource:
    """The running bdv2's origin from its direct_url.json, else its source tree, else the same version by name.

    Several ``bdv2`` distributions can be visible (a checkout's ``bdv2.egg-info`` on sys.path beside the venv's
    own record): the one with a direct_url.json wins.
    """
    found = list(metadata.distributions(name=dist_name))
    if not found:
        raise SelfSourceError(f"{dist_name} is imported from source without being installed (no {dist_name} "
                              "distribution metadata), so verify cannot install the same bdv2 into a row's venv: "
                              "`pip install .` (or a built wheel) first")
    for dist in found:
        text = dist.read_text("direct_url.json")
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            return from_direct_url(doc, dist_name, dist.version)
    version = found[0].version
    tree = Path(__file__).resolve().parents[2]  # the checkout's root in a checkout; bdv2/ in site-packages
    this = tree / "doctor" / "matrix" / "selfsource.py"
    if dist_name == "bdv2" and (tree / "setup.cfg").is_file() and this.is_file():
        return SelfSource(SourceKind.LOCAL_DIR, str(tree), version)
    return SelfSource(SourceKind.INDEX, f"{dist_name}=={version}", version)


def from_direct_url(doc: dict[str, Any], dist_name: str, version: str) -> SelfSource:
    """One pip argument from a direct_url.json document; a local file that is gone falls back to the index."""
    url = str(doc.get("url", ""))
    parsed = urlparse(url)
    if "vcs_info" in doc:
        vcs = doc["vcs_info"]
        ref = f"@{vcs['commit_id']}" if vcs.get("commit_id") else ""
        return SelfSource(SourceKind.VCS, f"{dist_name} @ {vcs.get('vcs', 'git')}+{url}{ref}", version)
    if parsed.scheme != "file":
        if "archive_info" in doc and parsed.scheme in ("http", "https"):
            return SelfSource(SourceKind.REMOTE_ARCHIVE, f"{dist_name} @ {url}", version)
        return SelfSource(SourceKind.INDEX, f"{dist_name}=={version}", version)
    path = Path(unquote(parsed.path))
    if not path.exists():  # the wheel was built in a temporary folder since deleted
        return SelfSource(SourceKind.INDEX, f"{dist_name}=={version}", version)
    kind = SourceKind.LOCAL_DIR if "dir_info" in doc else SourceKind.LOCAL_FILE
    return SelfSource(kind, str(path), version)
