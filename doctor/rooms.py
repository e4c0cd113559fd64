"""What an examined environment can run: bdv2's rooms beyond the doctor, each the distributions of its extra.

``bdv2[data]`` (the converters) and ``bdv2[train]`` (train, eval, demo) are defined once, in bdv2's own
package metadata (setup.cfg's extras, read here as the metadata probe reads a distribution's, never imported); a
distribution counts as present when it, or another member of its matrix [groups] entry (tensorflow for tensorflow-cpu,
tensorflow-probability for tfp-nightly), is installed in the examined environment. Versions are the rules'
business: this only says which rooms are missing altogether, so that an environment without jax is never
called healthy for training.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement

from .matrix.groups import shipped_groups
from .probe import script as probe_script
from .probe.snapshot import Snapshot, normalise

ROOMS = {"data": "data stack (bdv2 data)", "train": "training stack (bdv2 train, eval, demo)"}
"""Room (the extra that installs it) -> what it is called in the verdict."""


@dataclass(frozen=True)
class MissingRoom:
    """A room whose stack the environment lacks, with its absent distributions."""

    room: str
    missing: tuple[str, ...]

    def sentence(self) -> str:
        return (f"no {ROOMS[self.room]}: {', '.join(self.missing)} not installed; "
                f"`pip install \"bdv2[{self.room}]\"`, or a row of the matrix (`bdv2 matrix list`, then "
                "`pip install -c <(bdv2 matrix constraints ROW) ...`)")


def extra_requirements(room: str) -> tuple[str, ...]:
    """The normalised distribution names bdv2's ``room`` extra installs (empty when bdv2's metadata is absent)."""
    names = []
    for req in _own_requirements():
        if req.marker is not None and req.marker.evaluate({"extra": room}) and not req.marker.evaluate({"extra": ""}):
            names.append(normalise(req.name))
    return tuple(dict.fromkeys(names))


@functools.cache
def _own_requirements() -> tuple[Requirement, ...]:
    """bdv2's own Requires-Dist, parsed (read once per process)."""
    lines = probe_script.own_requires("bdv2")
    if lines is None:
        return ()
    out = []
    for line in lines:
        try:
            out.append(Requirement(line))
        except InvalidRequirement:
            continue
    return tuple(out)


def missing_rooms(snap: Snapshot) -> list[MissingRoom]:
    """The rooms of ROOMS the examined environment cannot run, each with its absent distributions."""
    groups = shipped_groups()
    group_of = {m: members for members in groups.values() for m in members}
    out = []
    for room in ROOMS:
        absent = tuple(name for name in extra_requirements(room)
                       if not any(snap.dist(m) for m in group_of.get(name, (name,))))
        if absent:
            out.append(MissingRoom(room, absent))
    return out
