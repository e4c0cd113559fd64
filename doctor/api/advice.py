"""Turn a missing name into a precise sentence from the API history (history.py): in which release of the
lacking package the name appeared or was removed, and which release of the caller stopped using it.

Used by the traceback reader (logs/tracebacks.py, ``--log``) and by ``--deep``'s scan of installed sources
(deep.py). Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..findings import Fix
from ..matrix.groups import canonical
from .history import History, Verdict, load, position, release_key


@dataclass(frozen=True)
class Advice:
    sentence: str
    fix: Fix
    removed: bool
    """True: the name was removed from the lacking package; False: it appeared after the installed release."""


def _position(v: Verdict, version: str | None) -> str | None:
    """'removed', 'later' (not yet there) or 'present' for ``version``; without one, what the history implies."""
    if not v.ranges:
        return None
    if version:
        inside = v.present_in(version)
        if inside is None:  # not a covered release: place it by its number
            k = release_key(version)
            if k < release_key(v.first or ""):
                return "later"
            if v.removed_in and k >= release_key(v.removed_in):
                return "removed"
            return None
        if inside:
            return "present"
        i = position(v.releases, version) or 0
        return "later" if i < v.ranges[0][0] else "removed"
    if v.removed_in:
        return "removed"
    return "later" if v.ranges[0][0] > 0 else None


def _removal(v: Verdict, version: str | None) -> tuple[str, str | None]:
    """(last release with the name, first without it) around ``version`` (the gap it falls in)."""
    end = v.ranges[-1][1]
    i = position(v.releases, version) if version else None
    if i is not None:
        end = max(b for a, b in v.ranges if b < i)
    return v.releases[end], v.releases[end + 1] if end + 1 < len(v.releases) else None


def _caller_upgrade(h: History, caller: str, caller_version: str | None, key: str) -> tuple[str, str | None]:
    """(a clause naming the caller release to move to, that release or None)."""
    if h.uses(caller, key) is None:
        return f"the API history does not cover {caller}'s releases", None
    first = h.first_without(caller, key, caller_version)
    if first:
        return f"{caller} {first} is the first release that does not use it", first
    return f"every covered {caller} release up to {h.releases(caller)[-1]} still uses it", None


def advise(lacking: str, dotted: str, caller: str | None, version: str | None = None,
           caller_version: str | None = None, history: History | None = None) -> Advice | None:
    """What the history says about ``dotted`` missing from ``lacking`` (installed ``version`` when known)."""
    h = history or load()
    lacking = canonical(lacking)  # the history covers the first distribution of each matrix group
    v = h.verdict(lacking, dotted) if h else None
    if h is None or v is None:
        return None
    where = _position(v, version)
    who = f"{caller} {caller_version}" if caller and caller_version else caller or "the calling code"
    if where == "later":
        sentence = f"`{v.key}` first appeared in {lacking} {v.first}; `{who}` needs {lacking} >= {v.first}."
        return Advice(sentence, Fix(f"install {lacking} >= {v.first} (the release {who} was written for)",
                                    (f'pip install "{lacking}>={v.first}"', "bdv2 doctor")), False)
    if where != "removed":
        return None
    last, removed = _removal(v, version)
    if removed is None:
        return None
    clause, target = _caller_upgrade(h, caller, caller_version, v.key) if caller else ("", None)
    if caller:
        sentence = (f"`{v.key}` was removed in {lacking} {removed} (last in {last}); `{who}` still uses it: "
                    f"upgrade `{caller}` to a release that does not{f' ({clause})' if clause else ''}, or keep "
                    f"{lacking} < {removed}.")
    else:  # the user's own code (or a caller the log does not show): no package to upgrade
        sentence = (f"`{v.key}` was removed in {lacking} {removed} (last in {last}): change the code that uses it, "
                    f"or keep {lacking} < {removed}.")
    # One way out as commands (the summary names the other): the caller's upgrade when a release is known.
    commands = (f'pip install "{caller}>={target}"' if caller and target else f'pip install "{lacking}<{removed}"',
                "bdv2 doctor")
    summary = (f"upgrade {caller} to {target} or newer" if caller and target else
               f"upgrade {caller} to a release made for {lacking} {removed} or newer" if caller else
               f"change the code that uses `{v.key}`")
    return Advice(sentence, Fix(f"{summary}, or keep {lacking} < {removed}", commands), True)
