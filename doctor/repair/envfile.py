"""Environment edits: apply EnvOps to a dict, write them as POSIX sh, and render the files --fix owns.

The doctor owns exactly these files and nothing else:
  venv:  ``<prefix>/bin/bdv2-env.sh`` plus one marked block in ``<prefix>/bin/activate`` that sources it;
  conda: ``<prefix>/etc/conda/activate.d/bdv2-env.sh`` and ``<prefix>/etc/conda/deactivate.d/bdv2-env.sh``.
Everything here is pure (text in, text out); apply.py writes the files with bdv2.fsutil.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import assert_never

from ..findings import EnvOp, EnvOpKind

BEGIN = "# >>> bdv2 doctor --fix >>>"
END = "# <<< bdv2 doctor --fix <<<"
OPS_HEADER = "# bdv2-env-ops: "
SCRIPT_NAME = "bdv2-env.sh"

# XLA_FLAGS is a space-separated list of `--name=value` flags, not a value to overwrite: a SET adds
# its flags (replacing a flag of the same name), a REMOVE drops the flags of that name. Users keep
# their own flags (e.g. --xla_dump_to) across a repair.
FLAG_VARS = ("XLA_FLAGS",)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def flag_name(flag: str) -> str:
    """'--xla_gpu_force_compilation_parallelism=1' -> '--xla_gpu_force_compilation_parallelism'."""
    return flag.split("=", 1)[0]


def merge_flags(current: str, add: str) -> str:
    """``current`` with every flag of ``add`` present once, at the end (same name: the new value wins)."""
    flags = current.split()
    for new in add.split():
        flags = [f for f in flags if flag_name(f) != flag_name(new)] + [new]
    return " ".join(flags)


def drop_flags(current: str, drop: str) -> str:
    names = {flag_name(f) for f in drop.split()}
    return " ".join(f for f in current.split() if flag_name(f) not in names)


def _entries(value: str) -> list[str]:
    return [e for e in value.split(":") if e]


def _same_dir(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def apply_env(ops: Iterable[EnvOp], environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` with ``ops`` applied in order (what the activation script does in sh).

    PREPEND moves the entry to the front of the ':'-list (once); REMOVE drops every copy of it and
    unsets the variable when nothing is left (an empty LD_LIBRARY_PATH entry means the current directory).
    """
    env = dict(environ)
    for op in ops:
        cur = env.get(op.name)
        match op.op:
            case EnvOpKind.SET:
                env[op.name] = merge_flags(cur or "", op.value) if op.name in FLAG_VARS else op.value
            case EnvOpKind.UNSET:
                env.pop(op.name, None)
            case EnvOpKind.PREPEND:
                env[op.name] = ":".join([op.value, *(e for e in _entries(cur or "") if not _same_dir(e, op.value))])
            case EnvOpKind.REMOVE:
                if cur is None:
                    continue
                left = drop_flags(cur, op.value) if op.name in FLAG_VARS else ":".join(
                    e for e in _entries(cur) if not _same_dir(e, op.value))
                if left:
                    env[op.name] = left
                else:
                    env.pop(op.name)
            case _:
                assert_never(op.op)
    return env


# POSIX sh helpers, defined while the script runs and removed at its end. They split with parameter
# expansion only (no IFS games, no external tools), so they behave the same in sh, bash, dash and zsh.
_HELPERS = r"""_bdv2_drop() {  # $1 list, $2 separator, $3 entry, $4 "name" to match flags by name -> $_bdv2_out
  _bdv2_out=''
  _bdv2_rest="$1$2"
  while [ -n "$_bdv2_rest" ]; do
    _bdv2_item="${_bdv2_rest%%"$2"*}"
    _bdv2_rest="${_bdv2_rest#*"$2"}"
    _bdv2_key="$_bdv2_item"
    if [ "$4" = name ]; then _bdv2_key="${_bdv2_item%%=*}"; fi
    if [ -n "$_bdv2_item" ] && [ "$_bdv2_key" != "$3" ] && [ "$_bdv2_key" != "$3/" ]; then
      _bdv2_out="${_bdv2_out:+$_bdv2_out$2}$_bdv2_item"
    fi
  done
}"""
_CLEANUP = "unset -f _bdv2_drop; unset _bdv2_out _bdv2_rest _bdv2_item _bdv2_key"


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"not an environment variable name: {name!r}")


def describe_op(op: EnvOp) -> str:
    """One line per environment edit, as people read it (``shell_lines`` is what a shell runs)."""
    match op.op:
        case EnvOpKind.SET:
            return f"add to {op.name}: {op.value}" if op.name in FLAG_VARS else f"set {op.name}={op.value}"
        case EnvOpKind.UNSET:
            return f"unset {op.name}"
        case EnvOpKind.PREPEND:
            return f"put {op.value} first in {op.name}"
        case EnvOpKind.REMOVE:
            return f"remove {op.value} from {op.name}"
        case _:
            assert_never(op.op)


def _op_lines(op: EnvOp) -> list[str]:
    n, q = op.name, shlex.quote(op.value)
    _check_name(n)
    match op.op:
        case EnvOpKind.SET if n in FLAG_VARS:
            lines = []
            for flag in op.value.split():
                lines += [f'_bdv2_drop "${{{n}:-}}" " " {shlex.quote(flag_name(flag))} name',
                          f'export {n}="${{_bdv2_out:+$_bdv2_out }}"{shlex.quote(flag)}']
            return lines
        case EnvOpKind.SET:
            return [f"export {n}={q}"]
        case EnvOpKind.UNSET:
            return [f"unset {n}"]
        case EnvOpKind.PREPEND:
            return [f'_bdv2_drop "${{{n}:-}}" : {shlex.quote(op.value.rstrip("/"))} path',
                    f'export {n}={q}"${{_bdv2_out:+:$_bdv2_out}}"']
        case EnvOpKind.REMOVE:
            mode = "name" if n in FLAG_VARS else "path"
            entry = flag_name(op.value) if n in FLAG_VARS else op.value.rstrip("/")
            sep = '" "' if n in FLAG_VARS else ":"
            return [f'if [ -n "${{{n}+x}}" ]; then',
                    f'  _bdv2_drop "${{{n}}}" {sep} {shlex.quote(entry)} {mode}',
                    f'  if [ -n "$_bdv2_out" ]; then export {n}="$_bdv2_out"; else unset {n}; fi',
                    "fi"]
        case _:
            assert_never(op.op)


def shell_lines(ops: Iterable[EnvOp]) -> list[str]:
    """POSIX sh that applies ``ops`` to the shell's values at the time it runs (for eval or sourcing)."""
    ops = list(ops)
    if not ops:
        return []
    body: list[str] = []
    for op in ops:
        body += _op_lines(op)
    return [*_HELPERS.splitlines(), *body, _CLEANUP]


def ops_to_json(ops: Iterable[EnvOp]) -> str:
    return json.dumps([o.to_dict() for o in ops], separators=(",", ":"))


def ops_from_script(text: str) -> tuple[EnvOp, ...]:
    """The ops a script written by ``env_script`` applies (read back so a later --fix adds to them)."""
    for line in text.splitlines():
        if line.startswith(OPS_HEADER):
            try:
                raw = json.loads(line[len(OPS_HEADER):])
                return tuple(EnvOp(EnvOpKind(d["op"]), d["name"], d.get("value", "")) for d in raw)
            except (ValueError, KeyError, TypeError):
                return ()
    return ()


def _saved(name: str) -> str:
    return f"_bdv2_saved_{name}"


def env_script(ops: tuple[EnvOp, ...], save: bool = False) -> str:
    """The sourced script. With ``save`` (conda) it first keeps every touched variable for deactivation."""
    head = ["# Written by `bdv2 doctor --fix`; `bdv2 doctor --undo` restores what was here before.",
            "# Do not edit: the next --fix rewrites this file from the line below.",
            OPS_HEADER + ops_to_json(ops)]
    lines: list[str] = []
    if save:
        for name in dict.fromkeys(o.name for o in ops):
            _check_name(name)
            # had = "1" when the variable was set (even to ""), so deactivation can unset it otherwise.
            lines.append(f'{_saved(name)}="${{{name}-}}"; {_saved(name)}_had="${{{name}+1}}"')
        lines.append("_bdv2_active=1")
    return "\n".join([*head, *lines, *shell_lines(ops)]) + "\n"


def deactivate_script(ops: tuple[EnvOp, ...]) -> str:
    """conda deactivate.d: put back the values the activate.d script saved."""
    lines = ["# Written by `bdv2 doctor --fix`: restores what activate.d/bdv2-env.sh changed.",
             'if [ -n "${_bdv2_active:-}" ]; then']
    for name in dict.fromkeys(o.name for o in ops):
        _check_name(name)
        s = _saved(name)
        lines += [f'  if [ -n "${{{s}_had:-}}" ]; then export {name}="${s}"; else unset {name}; fi',
                  f"  unset {s} {s}_had"]
    lines += ["  unset _bdv2_active", "fi"]
    return "\n".join(lines) + "\n"


def activate_block(script: Path) -> str:
    q = shlex.quote(str(script))
    return "\n".join([BEGIN, "# Added by `bdv2 doctor --fix`; `bdv2 doctor --undo` removes it.",
                      f"if [ -f {q} ]; then . {q}; fi", END]) + "\n"


def with_block(activate: str, block: str) -> str:
    """``activate`` with exactly one doctor block: replaced in place if there, appended otherwise."""
    start, end = activate.find(BEGIN), activate.find(END)
    if start != -1 and end > start:
        stop = end + len(END)
        if activate[stop:stop + 1] == "\n":
            stop += 1
        return activate[:start] + block + activate[stop:]
    sep = "" if activate.endswith("\n") or not activate else "\n"
    return activate + sep + block
