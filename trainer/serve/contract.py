"""What a served run promises: the image size it takes and the units of the actions it returns.

The action contract is bdv2.data_tools.contract's, from the run's metadata. The image size is not part of a
checkpoint (the encoders pool globally, so any size runs and gives meaningless actions at a size the run
never saw). It is read from the first trajectory of the run's
training data, or given (`bdv2 serve --image-size`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ServeError(ValueError):
    """The server cannot be set up as asked (no image size known, a public address without the flag)."""


def image_size_of(run: Any) -> int:
    """The side of the run's training images, from the first record of its first TFRecord file.

    Raises:
        ServeError: the run's data is not on this machine or is RLDS only; pass the size instead.
    """
    files = [f for src in run.task.sources for f in (*src.train_files, *src.val_files)]
    existing = [f for f in files if Path(f).is_file()]
    hint = "pass --image-size (the side the run's images were converted at, e.g. 128)"
    if not existing:
        where = files[0] if files else f"the data of task {run.task.name!r}"
        raise ServeError(f"cannot tell the run's image size: {where} is not readable here (or the run reads "
                         f"RLDS); {hint}")
    import tensorflow as tf

    from bdv2.data_tools import schema

    for serialized in tf.data.TFRecordDataset(existing[0]).take(1):
        shape = schema.parse_example(serialized)["observations/images0"].shape  # [T, S, S, 3]
        if len(shape) == 4 and shape[1] == shape[2]:
            return int(shape[1])
        raise ServeError(f"{existing[0]}: images of shape {list(shape)[1:]} are not square; {hint}")
    raise ServeError(f"{existing[0]}: no trajectory inside; {hint}")


def action_contract(policy: Any) -> dict[str, Any]:
    """The meaning of the actions the server returns, for the connect metadata: never normalised; frame,
    units, latency and gripper (range, polarity) from the run's action contract (bdv2.data_tools.contract,
    written by `bdv2 data stats` into the metadata every run snapshots), or "unknown" where it has none."""
    contract = policy.action_contract
    out: dict[str, Any] = {
        "normalised": False,
        "layout": ["x", "y", "z", "roll", "pitch", "yaw", "gripper"],
        "relabel_actions": bool(getattr(policy.run.settings, "relabel_actions", True)),
        "mean": [float(x) for x in policy.action_mean], "std": [float(x) for x in policy.action_std],
    }
    if contract is None:
        out.update(frame="unknown", units="unknown", gripper={"range": "unknown", "polarity": "unknown"})
    else:
        out.update(contract.to_dict())
    return out
