"""Read Python sources as syntax (``ast``), never importing them: which public names a module defines, and
which ``jax.…`` names a package's code uses. Shared by the API-history builder (tools/api_history/build.py)
and ``--deep``'s scan of installed packages (doctor/api/deep.py). Stdlib only.

A module's names: module-level defs, classes, assignments and imports not starting with ``_``, the strings of
``__all__``, minus public names it ``del``etes. Names under ``if TYPE_CHECKING:`` exist for type checkers only.
JAX's deprecation tables (``_deprecations = {"name": (message, obj)}`` read by a module ``__getattr__``, see
https://github.com/jax-ml/jax/blob/main/jax/_src/deprecations.py) make a name present while ``obj`` is an
object and absent (AttributeError) once it is ``None``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from typing import NamedTuple

_GUARD_EXC = {"ImportError", "ModuleNotFoundError", "AttributeError", "Exception", "BaseException"}
_GUARD_WORDS = ("hasattr", "getattr", "version", "TYPE_CHECKING", "sys.modules", "find_spec")


def is_test_path(path: str) -> bool:
    """Test files (``*_test.py``, ``test_*.py``, ``tests/``, ``testing/``): never run by users' code."""
    parts = path.split("/")
    name = parts[-1]
    return name.endswith(("_test.py", "_tests.py")) or name.startswith("test_") or \
        any(p in ("tests", "test", "testing", "test_utils") for p in parts[:-1])


def module_name(path: str) -> str | None:
    """``jax/numpy/__init__.py`` -> ``jax.numpy``; None for a file that is not an importable module."""
    if not path.endswith((".py", ".pyi")):
        return None
    parts = path.rsplit(".", 1)[0].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _strings(node: ast.expr | None) -> list[str]:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _deprecations(node: ast.expr) -> Iterator[tuple[str, bool]]:
    """(name, still an object) for each entry of a ``_deprecations`` dict."""
    if not isinstance(node, ast.Dict):
        return
    for k, v in zip(node.keys, node.values, strict=False):
        if isinstance(k, ast.Constant) and isinstance(k.value, str) and isinstance(v, ast.Tuple) and len(v.elts) >= 2:
            obj = v.elts[1]
            yield k.value, not (isinstance(obj, ast.Constant) and obj.value is None)


class _Names:
    def __init__(self, is_package: bool) -> None:
        self.is_package = is_package
        self.bound: set[str] = set()
        self.all: list[str] = []
        self.has_all = False
        self.all_static = True
        """False when ``__all__`` is computed (``__all__ += other.__all__``): then it is not read."""
        self.deleted: set[str] = set()
        self.deprecated: dict[str, bool] = {}
        self.stars: list[str] = []

    def target(self, t: ast.expr) -> None:
        if isinstance(t, ast.Name):
            self.bound.add(t.id)
            self.deleted.discard(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                self.target(e)

    def stmt(self, s: ast.stmt, module: str) -> None:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.target(ast.Name(s.name))
        elif isinstance(s, ast.Assign):
            for t in s.targets:
                self.target(t)
                if isinstance(t, ast.Name) and t.id == "__all__":
                    self.all = self.add_all(s.value, [])
                if isinstance(t, ast.Name) and t.id == "_deprecations":
                    self.deprecated.update(_deprecations(s.value))
        elif isinstance(s, (ast.AnnAssign, ast.AugAssign)):
            self.target(s.target)
            if isinstance(s.target, ast.Name) and s.target.id == "__all__":
                self.all = self.add_all(s.value, self.all)
        elif isinstance(s, ast.Import):
            for a in s.names:
                self.target(ast.Name(a.asname or a.name.split(".")[0]))
        elif isinstance(s, ast.ImportFrom):
            for a in s.names:
                if a.name == "*":
                    self.stars.append(resolve_from(module, s.level, s.module or "", self.is_package))
                else:
                    self.target(ast.Name(a.asname or a.name))
        elif isinstance(s, ast.Delete):
            for t in s.targets:
                if isinstance(t, ast.Name):
                    self.bound.discard(t.id)
                    self.deleted.add(t.id)
        elif isinstance(s, ast.If):
            self.block(s.orelse if _is_type_checking(s.test) else s.body + s.orelse, module)
        elif isinstance(s, ast.Try):
            self.block(s.body + [x for h in s.handlers for x in h.body] + s.orelse + s.finalbody, module)
        elif isinstance(s, ast.With):
            self.block(s.body, module)
        elif isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Attribute) \
                and isinstance(s.value.func.value, ast.Name) and s.value.func.value.id == "__all__":
            self.all_static = False  # __all__.extend(...) / .append(...)

    def add_all(self, value: ast.expr | None, before: list[str]) -> list[str]:
        found = _strings(value)
        self.has_all = True
        if not isinstance(value, (ast.List, ast.Tuple)) or len(found) != len(value.elts):
            self.all_static = False
        return before + found

    def block(self, body: Iterable[ast.stmt], module: str) -> None:
        for s in body:
            self.stmt(s, module)


def resolve_from(module: str, level: int, target: str, is_package: bool) -> str:
    """The absolute module of ``from <level dots><target> import ...`` written in ``module``."""
    if not level:
        return target
    base = module.split(".")
    base = base[:len(base) - level + (1 if is_package else 0)]
    return ".".join(base + ([target] if target else []))


class ModuleNames(NamedTuple):
    names: set[str]
    """The public names the module defines."""
    stars: list[str]
    """The modules it star-imports."""
    exports: set[str] | None
    """What ``from module import *`` takes: a literal ``__all__``; None when there is none or it is computed (then
    its public names, as Python does without ``__all__``, stand in)."""


def module_names(source: str, module: str, is_package: bool = False) -> ModuleNames:
    """The names of ``module`` (an ``__init__`` when ``is_package``) from its source; raises SyntaxError."""
    n = _Names(is_package)
    n.block(ast.parse(source).body, module)
    names = {x for x in n.bound if not x.startswith("_")} | set(n.all)
    names |= {k for k, alive in n.deprecated.items() if alive}
    names -= {k for k, alive in n.deprecated.items() if not alive and k not in n.bound}
    return ModuleNames(names - n.deleted, n.stars, set(n.all) if n.has_all and n.all_static else None)


def _mentions_guard(node: ast.AST) -> bool:
    """Whether an expression tests for a name or a version (``hasattr(jax, "x")``, ``jax.__version__ >= ...``,
    ``TYPE_CHECKING``, ``"x" in sys.modules``)."""
    for n in ast.walk(node):
        word = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else ""
        if word and any(w in word for w in _GUARD_WORDS):
            return True
    return False


def _guards(node: ast.AST) -> bool:
    """Whether ``node``'s code checks its names before use: a try/except ImportError (the body and the fallback
    in the handlers), an ``if`` or a conditional expression on hasattr/version: a missing name there is handled,
    not a bug."""
    if isinstance(node, ast.Try):
        caught = {n for h in node.handlers if h.type is not None
                  for n in ast.unparse(h.type).replace("(", "").replace(")", "").replace(" ", "").split(",")}
        return any(h.type is None for h in node.handlers) or bool({c.split(".")[-1] for c in caught} & _GUARD_EXC)
    if isinstance(node, (ast.If, ast.IfExp, ast.While)):
        return _mentions_guard(node.test)
    if isinstance(node, ast.BoolOp):
        return any(_mentions_guard(v) for v in node.values)
    return False


def _aliases(node: ast.AST, top: str, out: dict[str, str], unsure: set[str], guarded: bool = False) -> None:
    """Local name -> the ``top.…`` module or name it stands for (``jnp`` -> ``jax.numpy``); a name bound under a
    guard (``try: from jax.extend import linear_util as lu except ImportError: ...``) may be either, so it goes
    to ``unsure`` and its uses are not judged."""
    guarded = guarded or _guards(node)
    bound: dict[str, str] = {}
    if isinstance(node, ast.Import):
        bound = {a.asname or top: a.name if a.asname else top for a in node.names
                 if a.name == top or a.name.startswith(top + ".")}
    elif isinstance(node, ast.ImportFrom) and not node.level and node.module and \
            (node.module == top or node.module.startswith(top + ".")):
        bound = {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names if a.name != "*"}
    for name, target in bound.items():
        if guarded and target != top:
            unsure.add(name)
        out[name] = target
    for child in ast.iter_child_nodes(node):
        _aliases(child, top, out, unsure, guarded)


def _chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    attrs: list[str] = []
    cur: ast.expr = node
    while isinstance(cur, ast.Attribute):
        attrs.append(cur.attr)
        cur = cur.value
    return (cur.id, attrs[::-1]) if isinstance(cur, ast.Name) else None


def _visit(node: ast.AST, top: str, aliases: dict[str, str], found: set[str]) -> None:
    if _guards(node):
        return
    if isinstance(node, ast.ImportFrom) and not node.level and node.module and \
            (node.module == top or node.module.startswith(top + ".")):
        found.add(node.module)
        found.update(f"{node.module}.{a.name}" for a in node.names if a.name != "*")
    elif isinstance(node, ast.Import):
        found.update(a.name for a in node.names if a.name.startswith(top + "."))
    elif isinstance(node, ast.Attribute):
        c = _chain(node)
        if c and c[0] in aliases:
            found.add(".".join([aliases[c[0]], *c[1]]))
            return  # the inner attributes are prefixes of this chain
    for child in ast.iter_child_nodes(node):
        _visit(child, top, aliases, found)


def uses(source: str, top: str = "jax") -> set[str]:
    """The dotted ``top.…`` names ``source`` imports or reads as attribute chains (``jax.tree_map``,
    ``jax.experimental.maps``), leaving out those the code guards; raises SyntaxError."""
    tree = ast.parse(source)
    found: set[str] = set()
    aliases: dict[str, str] = {}
    unsure: set[str] = set()
    _aliases(tree, top, aliases, unsure)
    _visit(tree, top, {k: v for k, v in aliases.items() if k not in unsure}, found)
    return found
