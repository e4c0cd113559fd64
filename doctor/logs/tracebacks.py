"""Read Python tracebacks in a log as structure: chained exceptions, frames, and the package of each frame.

Understands the standard format (https://docs.python.org/3/library/traceback.html), chained tracebacks
("During handling of the above exception..." / "The above exception was the direct cause..."), pytest's
(`path:line: in func`, `E   Type: msg`) and IPython's (`File ~/x.py:12, in f`, `----> 12 ...`), inside
other log noise (SLURM `0:`/`[rank0]:` labels, timestamps, absl prefixes). Stdlib only.
"""

from __future__ import annotations

import enum
import functools
import re
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..api.advice import Advice, advise
from ..api.keras1 import SOURCE as KERAS1_SOURCE
from ..api.keras1 import keras1_keyword
from ..api.tf1 import SOURCE as TF1_SOURCE
from ..api.tf1 import Tf1Name, tf1_name
from ..findings import Area, Finding, Fix, Severity
from ..matrix.groups import alternatives
from .normalise import distinct_lines

# Top-level module -> distribution, for logs from another machine (no metadata at hand).
KNOWN_DISTS: dict[str, str] = {
    "jax": "jax", "jaxlib": "jaxlib", "flax": "flax", "optax": "optax", "chex": "chex",
    "orbax": "orbax-checkpoint", "distrax": "distrax", "tensorflow_probability": "tensorflow-probability",
    "tensorflow": "tensorflow", "keras": "keras", "tf_keras": "tf-keras", "numpy": "numpy", "scipy": "scipy",
    "ml_dtypes": "ml-dtypes", "tensorstore": "tensorstore", "google.protobuf": "protobuf", "torch": "torch",
    "jax_cuda12_plugin": "jax-cuda12-plugin", "jax_cuda13_plugin": "jax-cuda13-plugin", "haiku": "dm-haiku",
    "rlax": "rlax", "dm_env": "dm-env", "brax": "brax", "mujoco": "mujoco", "tensorflow_datasets":
    "tensorflow-datasets", "tf2onnx": "tf2onnx", "transformers": "transformers", "diffusers": "diffusers",
    "equinox": "equinox", "jraph": "jraph", "trax": "trax", "objax": "objax", "gymnax": "gymnax",
    "optimistix": "optimistix", "diffrax": "diffrax", "numpyro": "numpyro", "pandas": "pandas",
    "sklearn": "scikit-learn", "PIL": "pillow", "tree": "dm-tree", "absl": "absl-py", "einops": "einops",
    "jax_plugins.xla_cuda12": "jax-cuda12-plugin", "jax_plugins.xla_cuda13": "jax-cuda13-plugin",
    "jax_plugins.xla_cuda12_plugin": "jax-cuda12-plugin", "kerastuner": "keras-tuner", "cv2": "opencv-python",
    "yaml": "pyyaml", "skimage": "scikit-image", "attr": "attrs", "sonnet": "dm-sonnet", "gin": "gin-config",
    "tf_agents": "tf-agents", "acme": "dm-acme", "reverb": "dm-reverb", "tflite_runtime": "tflite-runtime",
}
# One import name, several distributions: the log's own mention of one decides (pip lines, paths, `pip list`).
# (TensorFlow's and TFP's are the matrix's [groups].)
_ALTERNATIVES = {"keras": ("keras-nightly",)}
_NAMESPACED = {"google", "orbax", "jax_plugins"}  # the distribution is named by the first two path parts

# Removed from the stdlib (PEP 594, PEP 632): not a distribution to install (sig-no-distutils explains one).
_REMOVED_STDLIB = {"distutils", "imp", "asynchat", "asyncore", "smtpd", "cgi", "pipes", "telnetlib", "crypt"}
_PREFIXES = re.compile(
    r"^(?:\[rank\d+\]:\s?|\d+:\s|srun: |"
    r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+\S+:\d+\]\s?|"
    r"\[?\d{4}-\d\d-\d\d[T ][\d:.,]+\S*\]?(?:\s*[-|]?\s*(?:INFO|ERROR|WARNING|DEBUG|CRITICAL)\s*[-|:]?)?\s?)")
_TB_START = re.compile(r"Traceback \(most recent call last\)|^Traceback:$")
_HEADED = re.compile(r"^((?:[A-Za-z_]\w{0,40}\.){0,6}[A-Z]\w{0,60}(?:Error|Exception))\s{2,80}"
                     r"Traceback \(most recent call last\)")
# Frame lines distinctive enough to open a traceback whose header the log lost (pytest, IPython, or an excerpt
# pasted from its last frames)
_PYTEST_FRAME = re.compile(r"^[^\s:]+\.py:\d+: in \S+$|^File [~/]\S+\.py:\d+|^\[?[~/]\S+\.py\]?(?:\(\S*\))? in \S+|"
                           r'^\s*File "[^"]+\.py", line \d+, in \S+$')
_ARROW = re.compile(r"^-*> ?\d*\s(.*)$")  # IPython's `---> 38 from jax import monitoring`
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"
_FRAME_PATTERNS = (
    re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>\S+))?'),
    re.compile(r"^\s*File (?P<path>[~/]\S+?\.py):(?P<line>\d+)(?:, in (?P<func>\S+))?"),  # IPython
    re.compile(r"^(?P<path>[^\s:]+\.py):(?P<line>\d+):(?: in (?P<func>\S+)|\s*\w*$)"),  # pytest
    re.compile(r"^\[?(?P<path>[~/]\S+?\.py)\]?(?:\(\S*\))? in (?P<func>\S+)"),  # older IPython/Colab, no line
)
_EXC = re.compile(
    r"^(?:E\s+|FAILED \S+ - )?(?P<type>(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Exhausted))"
    r"(?::\s*(?P<msg>.*))?$")
# An exception quoted inside prose (an issue's sentence, a markdown quote, a CI step's echo): "it gives the error
# `ModuleNotFoundError: No module named 'x'`", "raised the following error for me: AttributeError: module ...". Only a
# class named like an exception, after a space, quote, backtick or colon; the message ends at a closing quote.
_EXC_INLINE = re.compile(
    r"(?:^|(?<=[\s`'\"(:>]))(?<!except )(?P<type>(?:[A-Za-z_]\w{0,40}\.){0,4}[A-Z]\w{0,40}(?:Error|Exception))"
    r":\s{1,4}(?P<msg>[^`\n]{1,1000})")
# The message of a missing name quoted with no exception class at all ("the error `module 'flax' has no attribute
# 'optim'`"): read as the AttributeError / ImportError Python would have raised.
_LACK_INLINE = re.compile(r"(?P<msg>module '[\w.]{1,120}' has no attribute '\w{1,80}'|"
                          r"cannot import name '\w{1,80}' from '[\w.]{1,120}'|No module named '[\w.]{1,120}')")
_RAISED_IN_TB = re.compile(r"^(?P<type>(?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?::\s*(?P<msg>.*))?$")  # after frames: any class
_SITE = re.compile(r"(?:site|dist)-packages[/\\](?P<top>[^/\\]+)(?:[/\\](?P<sub>[^/\\]+))?")


class Chain(str, enum.Enum):
    """How an exception relates to the one printed before it."""

    FIRST = "first"
    CAUSE = "cause"  # "The above exception was the direct cause of the following exception:"
    CONTEXT = "context"  # "During handling of the above exception, another exception occurred:"


@dataclass(frozen=True)
class Frame:
    path: str
    line: int
    func: str
    module: str | None
    """Top-level module of a site-packages/dist-packages path (None: user code or the stdlib)."""
    dist: str | None
    code: str = ""
    """The source line the traceback shows for the frame (the arrowed one in IPython's layout)."""


@dataclass
class Raised:
    """One exception of a (possibly chained) traceback."""

    type: str
    message: str
    frames: list[Frame] = field(default_factory=list)
    chain: Chain = Chain.FIRST

    @property
    def line(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


# a traceback pasted into a thread as inline code, a quote or a markdown heading: "`  File ...", "> Traceback ...",
# "> ValueError: ...", "#### ImportError: ..." (a heading only before an exception's own line)
_QUOTED = re.compile(r"^(?:> ?|`{1,3})(?=\s{0,12}(?:File \"|Traceback|[\w.]{0,80}(?:Error|Exception)\b))|"
                     r"^#{1,6} (?=[\w.]{0,80}(?:Error|Exception): )")


def strip_prefix(line: str) -> str:
    return _QUOTED.sub("", _PREFIXES.sub("", line.rstrip(), count=1), count=1)


@functools.lru_cache(maxsize=1)
def _local_dists() -> dict[str, list[str]]:
    """This interpreter's top-level -> distributions (RECORD/top_level.txt), used only for unknown names."""
    import importlib.metadata

    try:
        return dict(importlib.metadata.packages_distributions())
    except Exception:  # a broken dist-info must not break log reading
        return {}


def dist_of(top: str, sub: str | None = None) -> str | None:
    if top.endswith(".py"):
        top = top[:-3]
    if top in _NAMESPACED and sub and f"{top}.{sub}" in KNOWN_DISTS:
        return KNOWN_DISTS[f"{top}.{sub}"]
    if top in KNOWN_DISTS:
        return KNOWN_DISTS[top]
    if not top.isidentifier():
        return None
    local = _local_dists().get(top)
    return local[0] if local else top.replace("_", "-")


def frame_of(path: str, line: int, func: str) -> Frame:
    m = _SITE.search(path)
    if not m:
        return Frame(path, line, func, None, None)
    top = m["top"].removesuffix(".py")
    return Frame(path, line, func, top, dist_of(top, m["sub"]))


def _match_frame(text: str) -> Frame | None:
    for pat in _FRAME_PATTERNS:
        m = pat.match(text)
        if m:
            return frame_of(m["path"], int(m.groupdict().get("line") or 0), m["func"] or "?")
    return None


@functools.lru_cache(maxsize=4)
def parse(text: str) -> list[list[Raised]]:
    """Every traceback in ``text``: each a chain of exceptions, the last one raised last (cached: read-only)."""
    chains: list[list[Raised]] = []
    current: list[Raised] = []
    frames: list[Frame] = []
    in_tb = False
    headed: str | None = None
    relation = Chain.FIRST
    quoted_lines: set[str] = set()  # a sentence quoting an exception again (or its traceback's last line) adds nothing
    for raw in text.splitlines():
        line = strip_prefix(raw)
        body = line.strip()
        if body in (_CAUSE, _CONTEXT):
            relation = Chain.CAUSE if body == _CAUSE else Chain.CONTEXT
            continue
        if _TB_START.search(body):
            in_tb, frames = True, []
            head = _HEADED.match(body)  # IPython names the class before the frames: a paste may stop before its line
            headed = head[1] if head else None
            continue
        frame = _match_frame(line) if in_tb or _PYTEST_FRAME.match(line) else None
        if frame:
            in_tb = True
            frames.append(frame)
            continue
        # a frame's source line is indented; IPython's arrow line may start at column 0
        arrow = _ARROW.match(body) if in_tb and frames and (line[:1].isspace() or body[:1] == "-") else None
        if in_tb and frames and (line[:1].isspace() or arrow) and body.strip("^~ ") and not _EXC.match(body):
            if arrow or not (frames[-1].code or body[:1].isdigit()):
                frames[-1] = replace(frames[-1], code=(arrow[1] if arrow else body).strip())
            continue
        m = _EXC.match(body) if (in_tb or not line[:1].isspace()) else None
        if not m and in_tb and frames and not line[:1].isspace():
            m = _RAISED_IN_TB.match(body)
        # pytest's own lines: "E       TypeError: ..." and "FAILED test.py::t - TypeError: ..."
        if m and (in_tb or body.startswith(m["type"]) or body.startswith("FAILED ") or _PYTEST_E.match(body)):
            if relation is Chain.FIRST and current:
                chains.append(current)
                current = []
            current.append(Raised(m["type"], (m["msg"] or "").strip(), frames, relation))
            quoted_lines.add(current[-1].line)
            in_tb, frames, relation = False, [], Chain.FIRST
        elif not in_tb and not m:
            quoted = _quoted_exception(body)
            if quoted and quoted.line not in quoted_lines:
                quoted_lines.add(quoted.line)
                if current:
                    chains.append(current)
                current = [quoted]
    if in_tb and frames and headed:  # the paste stopped inside the frames: the class IPython named is what was raised
        if current:
            chains.append(current)
        current = [Raised(headed, "", frames, relation)]
    if current:
        chains.append(current)
    return chains


def _quoted_exception(body: str) -> Raised | None:
    """An exception a sentence quotes (see _EXC_INLINE), or a missing-name message quoted without its class."""
    if len(body) > 4000:
        return None
    m = _EXC_INLINE.search(body) if "Error" in body or "Exception" in body else None
    if m:
        msg = m["msg"].strip().rstrip("`.,; ")
        return Raised(m["type"], msg[:-1] if msg.count("'") % 2 and msg.endswith("'") else msg)
    m = _LACK_INLINE.search(body) if "attribute" in body or "import name" in body or "No module" in body else None
    if m:
        kind = "AttributeError" if "attribute" in m["msg"] else "ImportError"
        return Raised(kind, m["msg"])
    return None


def last_exception(text: str) -> Raised | None:
    chains = parse(text)
    return chains[-1][-1] if chains else None


# An exception's class at the head of its message, in any layout a log gives it: a traceback's last line, pytest's
# "E   X: ..." and "FAILED t.py::t - X: ...", a quote in a sentence, no space after the colon
# ("PermissionError:[Errno13]")
_TYPE_HEAD = re.compile(r"(?<![\w.])(?:[A-Za-z_]\w{0,40}\.){0,6}(?P<type>[A-Z]\w{0,60}?(?:Error|Exception|Exit))"
                        r"\b ?(?::|$)", re.MULTILINE)


@functools.lru_cache(maxsize=4)
def exception_types(text: str) -> str:
    """The class names of the exceptions the log raised (its tracebacks' and any line that starts a message with
    one), without their modules, one per line, the last raised last."""
    seen: dict[str, None] = {}
    for chain in parse(text)[-4:]:
        for r in chain:
            seen[r.type.rsplit(".", 1)[-1]] = None
    tail = text[-100_000:]
    for m in _TYPE_HEAD.finditer(tail) if ("Error" in tail or "Exception" in tail or "Exit" in tail) else ():
        t = m["type"]
        seen.pop(t, None)
        seen[t] = None
    return "\n".join(seen)


class Lack(str, enum.Enum):
    """What an exception says is missing."""

    NAME = "name"  # module 'jax.X' has no attribute 'Y' / cannot import name 'Y' from 'jax.X' / jax.X.Y was removed
    SUBMODULE = "submodule"  # No module named 'jax.X' (jax itself is there)
    PACKAGE = "package"  # No module named 'X'
    SHADOWED = "shadowed"  # No module named 'jax.numpy'; 'jax' is not a package: a local jax.py hides jax
    BACKPORT = "backport"  # site-packages/dataclasses.py: a PyPI backport imported instead of the standard module


_LACKS = (
    (Lack.SHADOWED, re.compile(r"No module named '(?P<mod>\w+)\.(?P<name>[\w.]+)'; '\w+' is not a package")),
    # a paste may stop inside the quoted name ("has no attribute 'Ra"): the end of the message closes it
    (Lack.NAME, re.compile(r"module '(?P<mod>[\w.]+)' has no attribute [`'\"]{1,3}(?P<name>\w+)(?:[`'\"]|$)")),
    (Lack.NAME, re.compile(r"(?i:cannot) import name '(?P<name>\w+)' from (?:partially initiali[sz]ed module )?"
                           r"'(?P<mod>[\w.]+)(?:'|$)")),  # a paste may cut the module name off: 'jax.int
    # an object of a package's own class: "'jaxlib.xla_extension.DeviceList' object has no attribute 'device'"
    (Lack.NAME, re.compile(r"'(?P<mod>[a-z_]\w{0,40}(?:\.\w{1,60}){1,6})' object has no attribute '(?P<name>\w+)'")),
    (Lack.NAME, re.compile(r"^(?P<mod>[a-z_]\w*(?:\.\w+)*)\.(?P<name>\w+) (?:was|has been) (?:deprecated .{0,80}?and )?"
                           r"removed")),
    (Lack.SUBMODULE, re.compile(r"No module named '(?P<mod>\w+)\.(?P<name>[\w.]+)(?:'|$)")),
    (Lack.PACKAGE, re.compile(r"No module named '(?P<mod>\w+)'")),
    # Python 2 left the name unquoted, and for a submodule named only the part below the package it was importing
    # ("No module named contrib.slim"): a bare name is read, a dotted one only when the distribution is known
    (Lack.PACKAGE, re.compile(r"No module named (?P<mod>[A-Za-z_]\w{0,80})\s*$")),
    (Lack.SUBMODULE, re.compile(r"No module named (?P<mod>" + "|".join(sorted(k for k in KNOWN_DISTS if "." not in k))
                                + r")\.(?P<name>[\w.]{1,120})\s*$")),
)


@dataclass(frozen=True)
class Blame:
    """Who asked for what, and which package lacks it."""

    lack: Lack
    module: str
    """The module asked (``jax.core``), or the missing package's module."""
    name: str
    lacking: str
    """The distribution that lacks it (for Lack.PACKAGE: the one to install)."""
    caller: str | None
    """The distribution of the last frame before the error that is not ``lacking``'s or a wrapper's (None: the
    user's own code made the call, see ``own``)."""
    exception: Raised
    own: Frame | None = None
    """The user's own frame that made the call, when no package did."""

    @property
    def asked(self) -> str:
        return f"{self.module}.{self.name}" if self.lack is not Lack.PACKAGE else self.module


# Frames that only pass a call along: a framework's entry wrappers and the import machinery are never the culprit.
_WRAPPERS = {"absl-py", "click", "typer", "fire", "hydra-core", "pluggy", "_pytest", "pytest", "ipykernel",
             "IPython", "ipython", "runpy", "debugpy", "pydevd", "tqdm"}
_STDLIB_PATH = re.compile(r"^<frozen |[/\\]lib[/\\]python\d(?:\.\d{1,2})?[/\\](?!(?:site|dist)-packages)|"
                          r"^<(?:string|stdin|ipython-input)")
# Packages of one project: a name missing from jax is not jaxlib's to call (and the reverse).
_SAME_PROJECT = {"jax": {"jax", "jaxlib"}, "jaxlib": {"jax", "jaxlib"},
                 "tensorflow": {"tensorflow", "keras", "tf-keras"}}


def is_wrapper(f: Frame) -> bool:
    return bool(_STDLIB_PATH.search(f.path)) or (f.dist in _WRAPPERS) or \
        (f.module in ("IPython", "ipykernel", "_pytest", "pluggy", "runpy", "importlib"))


@dataclass(frozen=True)
class Culprit:
    """Who made the failing call: a package (by distribution) or the user's own file (path, line, code)."""

    frame: Frame

    @property
    def dist(self) -> str | None:
        return self.frame.dist

    @property
    def own_code(self) -> bool:
        return self.frame.dist is None

    def describe(self) -> str:
        f = self.frame
        return f.dist if f.dist else f"{f.path}, line {f.line}" + (f" (`{f.code}`)" if f.code else "")


def culprit(frames: list[Frame], lacking: str | None) -> Culprit | None:
    """The last frame before the library that lacks the name: the caller, whether a package or the user's file;
    wrapper frames (absl's app.run, runpy, click, importlib, IPython) are passed over."""
    same = _SAME_PROJECT.get(lacking or "", {lacking})
    for f in reversed(frames):
        if f.dist in same or is_wrapper(f):
            continue
        return Culprit(f)
    return None


def _caller(frames: list[Frame], lacking: str) -> str | None:
    c = culprit(frames, lacking)
    return c.dist if c else None


_OBJECT_ATTR = re.compile(r"'(?P<type>\w+)' object has no attribute '(?P<name>\w+)'")


def _receiver(exc: Raised, frames: list[Frame], text: str = "") -> tuple[str, str] | None:
    """``'Config' object has no attribute 'define_bool_state'`` where the failing line reads
    ``jax_config.define_bool_state(...)``: a receiver named for a package (``jax_config``, ``jax.config``) in another
    package's frame stands for that package's module, as a missing module attribute does: (module, name)."""
    m = _OBJECT_ATTR.search(exc.message)
    last = next((f for f in reversed(frames) if f.code), None)
    if not m or not last or m["type"] == "NoneType":
        return None
    call = re.search(rf"(?<![\w.])([A-Za-z_]\w*(?:\.\w+)*)\.{m['name']}\b", last.code)
    if call and m["type"] == "module":
        # Python 2's "'module' object has no attribute 'X'": the receiver is a module, named as the code imported it
        # (`tf.Variable` after `import tensorflow as tf`)
        root, _, rest = call[1].partition(".")
        mod = _module_of(root, text)
        if mod and mod.split(".")[0] in KNOWN_DISTS and mod.split(".")[0] != last.module:
            return ".".join(filter(None, (mod, rest))), m["name"]
    parts = re.split(r"[._]", call[1]) if call else []
    if not parts or parts[0] not in KNOWN_DISTS or parts[0] == last.module:
        return None
    return ".".join(parts), m["name"]


# Python before 3.8 and a cut message say only "cannot import name 'X'": the import statement (a frame's source line,
# or the code pasted beside the error) names the module it was asked from
_NAME_ONLY = re.compile(r"cannot import name '(?P<name>\w{1,80})'(?! from)")


def _imported_from(name: str, frames: list[Frame], text: str) -> str | None:
    """The module an ``from M import ... name`` statement asks ``name`` from, in the frames' code, else the log."""
    pat = re.compile(rf"\bfrom ([A-Za-z_][\w.]{{0,120}}) import [\w ,(]{{0,200}}?\b{re.escape(name)}\b")
    for src in (*(f.code for f in reversed(frames) if f.code), text[:200_000] if name in text else ""):
        m = pat.search(src)
        if m:
            return m[1]
    return None


_PYTEST_E = re.compile(r"E\s{1,12}[A-Za-z_]")
_FAMILIES_TOML = Path(__file__).parent.parent / "log_families.toml"
_KWARG = re.compile(r"(?:(?P<func>[A-Za-z_]\w{0,60})\(\) )?got an unexpected keyword argument '(?P<kw>\w{1,60})'")


@functools.lru_cache(maxsize=1)
def _families_table() -> dict[str, Any]:
    """log_families.toml as read once for this module's tables ({} when it cannot be read: no table, no reading)."""
    try:
        return tomllib.loads(_FAMILIES_TOML.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


@functools.lru_cache(maxsize=1)
def class_modules() -> dict[str, str]:
    """log_families.toml's [class_modules]: internal classes a message names without their module ("'ShapedArray'
    object has no attribute 'vma'") and the module that defines them; code built on them is tied to a release."""
    return {str(k): str(v) for k, v in _families_table().get("class_modules", {}).items()}


@functools.lru_cache(maxsize=1)
def import_aliases() -> dict[str, tuple[str, ...]]:
    """log_families.toml's [import_aliases]: the names code conventionally imports a module as (nn, jnp, tf)."""
    table = _families_table().get("import_aliases", {})
    return {k: tuple(str(m) for m in v) for k, v in table.items() if isinstance(v, list)}


def _module_of(root: str, text: str) -> str | None:
    """The module a name in code stands for: the log's own `import M as root`, a package's own name, else the
    conventional alias (of several, the one whose package the log mentions)."""
    own = re.search(rf"\bimport ([A-Za-z_][\w.]{{0,120}}) as {re.escape(root)}\b|"
                    rf"\bfrom ([A-Za-z_][\w.]{{0,120}}) import (\w{{1,60}}) as {re.escape(root)}\b", text[:200_000])
    if own:
        return own[1] or f"{own[2]}.{own[3]}"
    if root in KNOWN_DISTS:
        return root
    known = import_aliases().get(root, ())
    if len(known) == 1:  # one module goes by that name (`tf`, `jnp`): the log need not spell it out
        return known[0]
    return next((m for m in known if re.search(rf"(?<![\w.]){re.escape(m.split('.')[0])}\b", text[:200_000])),
                None)


def _keyword_lack(kw: str, frames: list[Frame], text: str, func: str | None = None) -> tuple[str, str] | None:
    """``f() got an unexpected keyword argument 'rng'`` where the failing line calls a package's callable with
    ``rng=``: that package's release lacks the keyword (module, ``Callable(kw=)``). A call spread over several lines
    shows only its head (``self.fn = jax.jit(``): then the callable the message names (``jit()``) is looked for."""
    pat = re.compile(rf"(?<![\w.])(?P<call>[A-Za-z_][\w.]{{0,120}})\([^\n]{{0,300}}?(?<![\w.]){re.escape(kw)} ?=(?!=)")
    named = re.compile(rf"(?<![\w.])(?P<call>[A-Za-z_][\w.]{{0,120}}\.{re.escape(func)})\(") \
        if func and not func.startswith("__") else None
    codes = [f.code for f in reversed(frames) if f.code]
    # in the failing lines, the innermost call that holds the keyword (`model.add(nn.Dense(8, kw=...))` is
    # nn.Dense's); in the rest of the log, the first call before it
    calls = [c.split(".") for src in codes if (c := _callee(src, kw))]
    tries = [(pat, src) for src in (text[:200_000] if f"{kw}=" in text else "",)]
    tries += [(named, src) for src in codes] if named else []
    calls += [m["call"].split(".") for p, src in tries if (m := p.search(src))]
    for parts in calls:
        mod = _module_of(parts[0], text) if len(parts) > 1 else None
        if mod:
            return ".".join([mod, *parts[1:-1]]), f"{parts[-1]}({kw}=)"
    return None


# A package's callable refusing the arguments another package's line passes it ("split() takes 2 positional
# arguments but 3 were given", "init() missing 1 required positional argument: 'rng'"): the caller was written for
# another release's signature.
_ARGS = re.compile(r"(?P<func>[A-Za-z_]\w{0,60})\(\) (?:takes (?:from \d{1,2} to )?\d{1,2} positional arguments? but "
                   r"(?P<given>\d{1,2}) (?:were|was) given|missing \d{1,2} required (?:positional |keyword-only )?"
                   r"arguments?: (?P<arg>'\w{1,60}'))")


def _arguments_lack(func: str, frames: list[Frame], text: str, given: str | None, arg: str | None
                    ) -> tuple[str, str] | None:
    """The package callable named ``func`` that the failing line of an installed package calls (a call from the
    user's own code may be the user's mistake: not read here), when it belongs to another package."""
    if func.startswith("__"):
        return None
    called = re.compile(rf"(?<![\w.])(?P<call>[A-Za-z_][\w.]{{0,120}}\.{re.escape(func)})\(")
    last = next((f for f in reversed(frames) if f.code), None)
    m = called.search(last.code) if last and last.dist and not is_wrapper(last) else None
    parts = m["call"].split(".") if m else []
    mod = _module_of(parts[0], text) if parts else None
    if not mod or dist_of(mod.split(".")[0]) in (None, last.dist if last else None):
        return None
    how = f"{given} positional arguments" if given else f"no {arg}"
    return ".".join([mod, *parts[1:-1]]), f"{func}(<{how}>)"


# Python 2 named a missing submodule only below the package it had found ("No module named contrib.slim" for
# `import tensorflow.contrib.slim`): the failing frame's import line gives the rest.
_PY2_BELOW = re.compile(r"No module named (?P<rel>[A-Za-z_]\w{0,80}(?:\.\w{1,80}){1,6})\s*$")


def _py2_submodule(exc: Raised, frames: list[Frame]) -> tuple[Lack, str, str] | None:
    m = _PY2_BELOW.search(exc.message)
    if not m:
        return None
    rel = re.compile(rf"\b(?:import|from)\s+((?:[A-Za-z_]\w{{0,60}}\.){{1,6}}){re.escape(m['rel'])}\b")
    for f in reversed(frames):
        hit = rel.search(f.code) if f.code else None
        top, below = (hit[1] + m["rel"]).split(".", 1) if hit else ("", "")
        if top in KNOWN_DISTS:  # as for the quoted form: a distribution the doctor knows, not a local package
            return Lack.SUBMODULE, top, below
    return None


# A paste cut right after the quote that opens the missing name ("module 'tensorflow' has no attribute '"): the failing
# line of code still shows which attribute of that module it asked for.
_CUT_NAME = re.compile(r"module '(?P<mod>[\w.]{1,120})' has no attribute [`'\"]{0,3}\s{0,4}$")


def _name_from_code(mod: str, frames: list[Frame], text: str) -> str | None:
    for f in reversed(frames):
        for m in re.finditer(r"(?<![\w.])([A-Za-z_]\w{0,40})\.([A-Za-z_]\w{0,80})", f.code or ""):
            if m[1] == mod or _module_of(m[1], text) == mod:
                return m[2]
    return None


def _lack_of(exc: Raised, frames: list[Frame], text: str = "") -> tuple[Lack, str, str] | None:
    if "partially initiali" in exc.message and "circular import" in exc.message:
        return None  # the module is there, half-imported: an import cycle (often a local file's name), not a release
    for lack, pat in _LACKS:
        m = pat.search(exc.message)
        if m:
            return lack, m["mod"], m["name"] if lack is not Lack.PACKAGE else ""
    below = _py2_submodule(exc, frames)
    if below:
        return below
    cut = _CUT_NAME.search(exc.message)
    named = _name_from_code(cut["mod"], frames, text) if cut else None
    if cut and named:
        return Lack.NAME, cut["mod"], named
    only = _NAME_ONLY.search(exc.message)
    mod = _imported_from(only["name"], frames, text) if only else None
    if only and mod:
        return Lack.NAME, mod, only["name"]
    kw = _KWARG.search(exc.message)
    lacking_kw = _keyword_lack(kw["kw"], frames, text, kw["func"]) if kw else None
    if lacking_kw:
        return Lack.NAME, *lacking_kw
    args = _ARGS.search(exc.message)
    lacking_args = _arguments_lack(args["func"], frames, text, args["given"], args["arg"]) if args else None
    if lacking_args:
        return Lack.NAME, *lacking_args
    r = _receiver(exc, frames, text)
    if r:
        return (Lack.NAME, *r)
    m = _OBJECT_ATTR.search(exc.message)
    if m and m["type"] == "Config" and m["name"].startswith("jax_"):  # jax's config object: its options are jax_*
        return Lack.NAME, "jax.config", m["name"]
    mod = class_modules().get(m["type"]) if m else None
    return (Lack.NAME, mod, f"{m['type']}.{m['name']}") if m and mod else None


def _names_module(path: str, top: str) -> bool:
    """Whether ``path`` is a file that `import top` can find: ``top.py`` or ``top/__init__.py``."""
    parts = re.split(r"[/\\]", path)
    return parts[-1] == f"{top}.py" or parts[-2:] == [top, "__init__.py"]


def _local_namesake(top: str, exc: Raised, frames: list[Frame]) -> bool:
    """A user's own file named like the package that lacks a name: a frame of it (``big_vision/optax.py`` for
    ``optax``), or the file a circular-import message names ("... from partially initialized module 'tensorflow'
    (most likely due to a circular import) (C:\\repos\\tensorflow\\tensorflow.py)"), outside site-packages. That
    file is what `import top` found."""
    if any(f.dist is None and not is_wrapper(f) and _names_module(f.path, top) for f in frames):
        return True
    if "circular import" not in exc.message:
        return False
    m = re.search(r"\((?P<path>[^()\n]{1,400}\.py)\)\s{0,4}$", exc.message)
    return m is not None and not re.search(r"[/\\](?:site|dist)-packages[/\\]", m["path"]) \
        and _names_module(m["path"], top)


# PyPI backports of standard modules whose distribution is named otherwise than the module
_BACKPORT_DISTS = {"enum": "enum34", "concurrent": "futures"}


def _backport(top: str, frames: list[Frame], text: str) -> str | None:
    """The standard module a PyPI backport stands in for, where one is imported from site-packages: a frame in
    ``site-packages/dataclasses.py`` (the backport that breaks on Python >= 3.7), or the module that lacks a name
    seen at such a path (``site-packages/enum/__init__.py``)."""
    for f in reversed(frames):
        if f.module and f.dist and f.module in sys.stdlib_module_names:
            return f.module
    at = re.compile(rf"(?:site|dist)-packages[/\\]{re.escape(top)}(?:\.py\b|[/\\]__init__\.py)")
    return top if top in text and at.search(text[:200_000]) else None


def _package_in_cwd(frames: list[Frame]) -> str | None:
    """A known package imported from the working directory: Python prints a module found through sys.path's ''
    entry by a relative path ("tensorflow/__init__.py"), so a source checkout or a folder of the package's name in
    the directory the program started from is what `import` found."""
    for f in frames:
        if f.dist is None and not is_wrapper(f) and not re.match(r"[/\\<~]|[A-Za-z]:", f.path):
            parts = re.split(r"[/\\]", f.path)
            if len(parts) >= 2 and parts[0] in KNOWN_DISTS:
                return parts[0]
    return None


def _script_named_like_package(frames: list[Frame]) -> str | None:
    """A user's own file named like a known package (``keras.py``) whose line imports that package: `import keras`
    found the file itself, so whatever the import then asks of it is missing, in any wording (Python 2's "No module
    named datasets" as well as 3's "'keras' is not a package")."""
    for f in frames:
        if f.dist is None and not is_wrapper(f) and f.code:
            top = re.split(r"[/\\]", f.path)[-1].removesuffix(".py")
            if f.path.endswith(".py") and top in KNOWN_DISTS and \
                    re.match(rf"\s*(?:from {re.escape(top)}(?:\.\w+)* import|import {re.escape(top)}\b)", f.code):
                return top
    return None


def blame(exc: Raised, frames: list[Frame] | None = None, text: str = "") -> Blame | None:
    """Read a missing-name exception; ``frames`` defaults to the exception's own; ``text`` (the log) may name the
    module an import asked a name from when the message does not."""
    frames = exc.frames if frames is None else frames
    importing = exc.type.endswith(("ImportError", "ModuleNotFoundError"))
    local = (_package_in_cwd(frames) or _script_named_like_package(frames)) if importing else None
    if local:
        return Blame(Lack.SHADOWED, local, "", dist_of(local) or local, None, exc, None)
    found = _lack_of(exc, frames, text)
    if not found:
        return None
    lack, mod, name = found
    top = mod.split(".")[0]
    parts = mod.split(".")
    if top in sys.stdlib_module_names or top in _REMOVED_STDLIB:
        std = _backport(top, frames, text) if lack is Lack.NAME else None
        return Blame(Lack.BACKPORT, std, name, _BACKPORT_DISTS.get(std, std), None, exc, None) if std else None
    lacking = dist_of(top, parts[1] if len(parts) > 1 else None)
    if not lacking:
        return None
    c = culprit(frames, lacking)
    if c and c.own_code and "." in name and c.frame.code and f".{name.rsplit('.', 1)[1]}" not in c.frame.code:
        c = None  # an internal class's attribute the user's line does not ask for: a package between them, cut off
    if lack is Lack.PACKAGE and top not in KNOWN_DISTS and top not in _local_dists() \
            and not (c and c.dist and c.frame.module != top and not top.startswith("_")):
        return None  # a local module, not a distribution: nothing to install (unless an installed package imports
        # it: then it is one of that package's dependencies)
    if lack is Lack.NAME and _local_namesake(top, exc, frames):
        lack = Lack.SHADOWED  # the module that lacks the name is a local file of the package's name
    return Blame(lack, mod, name, lacking, c.dist if c else None, exc, c.frame if c and c.own_code else None)


def distinct(found: list[Blame]) -> list[Blame]:
    """``found`` without repeats of one failure (the same name missing for the same caller)."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for b in found:
        key = (b.lack, b.module, b.name, b.caller, b.own.path if b.own else None, b.own.line if b.own else 0)
        if key not in seen:
            seen.add(key)
            out.append(b)
    return out


@functools.lru_cache(maxsize=4)
def blames(text: str) -> list[Blame]:
    """One Blame per traceback whose exceptions (the final first, then each chained one) lack a name."""
    out: list[Blame] = []
    done: dict[tuple[object, ...], Blame | None] = {}  # a traceback printed again is read once
    for chain in parse(text):
        key = tuple((r.type, r.message, tuple(r.frames)) for r in chain)
        if key in done:
            known = done[key]
            out += [known] if known else []
            continue
        found = None
        for i in range(len(chain) - 1, -1, -1):
            b = blame(chain[i], text=text)
            if b and not b.caller and not b.own:  # a re-raise in a chain: the earlier exceptions' frames name it
                b = blame(chain[i], [f for r in chain[:i + 1] for f in r.frames], text)
            if b:
                found = replace(b, lacking=as_seen(b.lacking, text),
                                caller=as_seen(b.caller, text) if b.caller else None)
                out.append(found)
                break
        done[key] = found
    return out


@functools.lru_cache(maxsize=256)
def as_seen(dist: str, text: str) -> str:
    """``dist``, or the sibling distribution of the same import name that the log mentions (tfp-nightly)."""
    for alt in _ALTERNATIVES.get(dist, ()) or alternatives(dist):
        name = re.escape(alt).replace(r"\-", "[-_]")
        if re.search(rf"(?<![\w-]){name}(?![A-Za-z_])", text, re.IGNORECASE):
            return alt
    return dist


@functools.lru_cache(maxsize=256)
def versions_in(text: str, dist: str) -> list[str]:
    """Versions of ``dist`` the log shows (pip lines, wheel, dist-info and conda file names, `pip list`, `pip show`,
    'jax version 0.4.12'), first seen first."""
    name = re.escape(dist).replace(r"\-", "[-_]")
    pat = re.compile(rf"(?<![\w.-]){name}(?:==|-| +|\s*\(|/|\s+version:?\s+|\s*\nVersion:\s*|\.__version__\W+)"
                     rf"v?(\d+\.\d+(?:\.\d+)*(?:\.?(?:post|dev|rc)\d+)?)(?![\w.]*/site-packages)", re.IGNORECASE)
    seen: list[str] = []
    for m in pat.finditer(distinct_lines(text)):  # a version is seen where its line first appears
        if m[1] not in seen:
            seen.append(m[1])
    return seen


class TracebackKind(str, enum.Enum):
    """The finding ids this module produces."""

    ERA_MISMATCH = "log-era-mismatch"
    MISSING_NAME = "log-missing-name"
    MISSING_PACKAGE = "log-missing-package"
    SHADOWED_MODULE = "log-shadowed-module"


def _seen(text: str, dist: str) -> str:
    found = versions_in(text, dist)
    return f"{dist} {', '.join(found)}" if found else f"{dist} (version not in the log)"


def _how_to_see_versions(b: Blame, text: str) -> str:
    known = versions_in(text, b.caller or "") or versions_in(text, b.lacking)
    return ("" if known else " The log does not show the versions: run `bdv2 doctor` with that environment's python "
            "(`bdv2 doctor --python PATH`) to see both and the nearest known-good row.")


def _era_fix(b: Blame, text: str, advice: Advice | None = None) -> Fix:
    caller, lacking = b.caller or "", b.lacking
    how = _how_to_see_versions(b, text)
    if advice:  # the history's releases, and the same pointer to the versions when the log lacks them
        return Fix(f"{advice.fix.summary}.{how}", advice.fix.commands)
    return Fix(f"Move both to one era: usually upgrade {caller} to a release made for the installed {lacking}; "
               f"else install the {lacking} release {caller} was written for (one that has {b.asked}).{how}",
               commands=(f"pip install --upgrade {caller}", "bdv2 doctor"))


def _history_advice(b: Blame, text: str) -> Advice | None:
    """The API history's sentence for a missing name or submodule. Of the versions the log shows (a message
    may name others: "use jax.tree.map (jax v0.4.25 or newer)"), the first that lacks the name is the one
    that ran; if every one has it, the log is from another install and the history says nothing."""
    if b.lack not in (Lack.NAME, Lack.SUBMODULE):
        return None
    theirs = versions_in(text, b.caller) if b.caller else []
    mine: list[str | None] = [*versions_in(text, b.lacking)] or [None]
    return next((a for v in mine if (a := advise(b.lacking, b.asked, b.caller, v, theirs[0] if theirs else None))),
                None)


def finding(b: Blame, text: str, name: str = "log", renames: dict[str, str] | None = None) -> Finding:
    evidence: tuple[str, ...] = (f"{name}: {b.exception.line[:400]}", f"seen in the log: {_seen(text, b.lacking)}")
    if b.lack is Lack.SHADOWED:
        return Finding(TracebackKind.SHADOWED_MODULE.value, Severity.ERROR, Area.LOG,
                       f"'{b.module}' is not the {b.lacking} package: a file or folder named {b.module}(.py) earlier "
                       f"on sys.path (the script's folder, the working directory) hides it", evidence[:1],
                       Fix(f"rename the local {b.module}.py (or {b.module}/ folder, or start Python outside a source "
                           f"checkout of it) and delete its __pycache__; "
                           f"`python -c \"import {b.module}; print({b.module}.__file__)\"` shows which one is imported",
                           (f"python -c \"import {b.module}; print({b.module}.__file__)\"",)),
                       source="https://docs.python.org/3/library/sys_path_init.html", packages=(b.lacking,))
    if b.lack is Lack.BACKPORT:
        return Finding(TracebackKind.SHADOWED_MODULE.value, Severity.ERROR, Area.LOG,
                       f"the PyPI package {b.lacking}, a backport of the standard library's {b.module} for older "
                       f"Pythons, is imported instead of the standard module (from site-packages) and breaks on "
                       f"this Python", evidence[:1],
                       Fix(f"uninstall the backport (`pip uninstall -y {b.lacking}`); the package that pulled it in "
                           f"should require it only on the Pythons that lack {b.module} (a `; python_version < ...` "
                           f"marker): upgrade that package, or keep it from reinstalling {b.lacking}",
                           (f"pip uninstall -y {b.lacking}", f"pip show {b.lacking}")),
                       source="https://docs.python.org/3/library/sys_path_init.html", packages=(b.lacking,))
    if b.lack is Lack.PACKAGE:
        who = b.caller or "the failing code"
        return Finding(TracebackKind.MISSING_PACKAGE.value, Severity.ERROR, Area.LOG,
                       f"{who} imports {b.module}, which is not installed in that environment (distribution "
                       f"{b.lacking}, guessed from the module name)", evidence[:1],
                       Fix(f"install {b.lacking} at the version {who} needs", (f"pip install {b.lacking}",)),
                       packages=tuple(p for p in (b.caller, b.lacking) if p))
    tf1 = _tf1_code(b, text)
    if tf1:
        return _tf1_finding(b, tf1, text, evidence)
    advice = _history_advice(b, text)
    if advice:  # the API history (api/history.py) names the release that removed or added the name
        evidence = (*evidence, f"API history: {advice.sentence}")
    if b.caller:
        return Finding(TracebackKind.ERA_MISMATCH.value, Severity.ERROR, Area.LOG,
                       f"{b.caller} and the installed {b.lacking} are from different eras: {b.caller} calls "
                       f"{b.asked}, which this {b.lacking} does not have",
                       (*evidence, f"seen in the log: {_seen(text, b.caller)}"),
                       _era_fix(b, text, advice), packages=(b.caller, b.lacking))
    if b.lacking == "jaxlib" and b.own is None:
        # jaxlib is jax's compiled backend: jax calls into it, and so do a few libraries built on jax (chex, flax,
        # optax reach jaxlib.xla_extension); with no frame to say which, the finding names them all
        # (https://docs.jax.dev/en/latest/installation.html: jax and jaxlib are installed as a pair)
        return Finding(TracebackKind.MISSING_NAME.value, Severity.ERROR, Area.LOG,
                       f"the installed jaxlib has no {b.asked}: jax, or chex, flax or optax (which also reach into "
                       f"jaxlib), was written for another jaxlib release", evidence,
                       Fix("install jax and jaxlib of one release together (`pip install -U jax jaxlib`, or "
                           "jax's extra for the accelerator), then upgrade chex, flax and optax to releases made for "
                           "that jax",
                           ("pip install -U jax jaxlib", "pip list | grep -i -E 'jax|chex|flax|optax'")),
                       packages=("jax", "jaxlib"))
    if b.own is not None:
        return _own_code_finding(b, b.own, evidence, advice, renames or {})
    return Finding(TracebackKind.MISSING_NAME.value, Severity.ERROR, Area.LOG,
                   f"the installed {b.lacking} has no {b.asked}: the code calling it was written for another "
                   f"{b.lacking} release", evidence,
                   Fix(f"find the caller in the full traceback (the last frame before the error) and upgrade it, "
                       f"or pin {b.lacking} to the release that still has {b.asked}; `bdv2 doctor` on that "
                       f"environment names the versions", ("bdv2 doctor",)),
                   packages=(b.lacking,))


def _tensorflow_versions(text: str) -> list[str]:
    return versions_in(text, "tensorflow") + versions_in(text, "tensorflow-gpu") + versions_in(text, "tensorflow-cpu")


def only_tensorflow_1(text: str) -> bool:
    """Whether the log shows TensorFlow versions and every one is a 1.x (or older)."""
    shown = _tensorflow_versions(text) if "ensorflow" in text else []
    return bool(shown) and all(v.startswith(("0.", "1.")) for v in shown)


def _tf1_code(b: Blame, text: str) -> Tf1Name | None:
    """A TensorFlow 1.x name asked of a TensorFlow 2 (none of the TensorFlow versions the log shows is 1.x)."""
    if b.lacking not in ("tensorflow", "tensorflow-gpu", "tensorflow-cpu", "keras") or b.lack not in (
            Lack.NAME, Lack.SUBMODULE):
        return None
    if only_tensorflow_1(text):
        return None  # a TensorFlow 1.x lacking it: the code is newer than that release, not older
    # Keras from 2.4 on is tf.keras: `keras.backend.get_session` is TensorFlow 1's tf.keras.backend.get_session
    return tf1_name(f"tf.{b.asked}" if b.lacking == "keras" else b.asked)


def _tf1_finding(b: Blame, tf1: Tf1Name, text: str, evidence: tuple[str, ...]) -> Finding:
    """Code written for TensorFlow 1.x running on TensorFlow 2: name the caller and the way to each side."""
    now = f" (TensorFlow 2 keeps it as {tf1.now})" if tf1.now else " (it was not carried into TensorFlow 2)"
    where = f"{b.own.path}, line {b.own.line}" if b.own else None
    who = b.caller or (f"your code ({where})" if where else "the code")
    shown = [v for v in _tensorflow_versions(text) if not v.startswith(("0.", "1."))]
    installed = f"TensorFlow {shown[0]}" if shown else "TensorFlow 2"
    port = ("`import tensorflow.compat.v1 as tf` with `tf.disable_v2_behavior()` runs most TensorFlow 1 code"
            + (f"; or change {tf1.key} to {tf1.now}" if tf1.now and not tf1.key.endswith(".contrib") else "")
            + "; `tf_upgrade_v2 --intree SRC --outtree DST` rewrites a whole project")
    if b.own and b.own.code and tf1.now and tf1.key.split(".", 1)[1] in b.own.code:
        port = f"in {where}: change `{b.own.code}` to use {tf1.now}; or " + port
    old = 'pip install "tensorflow<2"'
    if b.caller:
        summary = (f"upgrade {b.caller} to a release written for TensorFlow 2, or run it under TensorFlow 1.15 "
                   f"(`{old}`, Python 3.7 or older)")
        commands: tuple[str, ...] = (f"pip install --upgrade {b.caller}", old)
    else:
        summary = f"port it: {port}; or run it under TensorFlow 1.15 (`{old}`, Python 3.7 or older)"
        commands = (old,)
    packages = (b.caller, b.lacking) if b.caller else (b.lacking,)
    return Finding(TracebackKind.ERA_MISMATCH.value, Severity.ERROR, Area.LOG,
                   f"{who} was written for TensorFlow 1.x and runs on {installed}: {tf1.key} is not in TensorFlow "
                   f"2's API{now}",
                   (*evidence, f"TensorFlow's upgrade tables: {tf1.key} -> {tf1.now or 'no TensorFlow 2 home'}",
                    *((f"the call: {where}" + (f": {b.own.code}" if b.own and b.own.code else ""),) if where else ())),
                   Fix(summary, commands), source=TF1_SOURCE, packages=packages)


# "use jax.tree.map (jax v0.4.25 or newer) instead", "Please use `np.float64`", "Use X instead."
INSTEAD = re.compile(r"(?:[Uu]se|[Pp]lease use|[Tt]ry|[Mm]igrate to|[Rr]eplace (?:it )?with) `?(?P<instead>[A-Za-z_]"
                     r"[\w.]{0,80}(?:\(\))?)`?(?: \([^)\n]{0,60}\))?(?: instead)?")


def replacement(b: Blame, renames: dict[str, str]) -> str | None:
    """What to call instead of ``b.asked``: the message's own "use X" first, else the known renames."""
    m = INSTEAD.search(b.exception.message[:2000])
    if m and m["instead"].rstrip(".") != b.asked:
        return m["instead"].rstrip(".")
    return renames.get(b.asked)


def _own_code_finding(b: Blame, frame: Frame, evidence: tuple[str, ...], advice: Advice | None,
                      renames: dict[str, str]) -> Finding:
    """The user's own file made the call: name it with its path and line, and the one-line change."""
    where = f"{frame.path}, line {frame.line}"
    new = replacement(b, renames)
    if advice and not advice.removed:  # the name is newer than the installed release: the code is ahead of it
        return Finding(TracebackKind.MISSING_NAME.value, Severity.ERROR, Area.LOG,
                       f"your code ({where}) calls {b.asked}, which is newer than the installed {b.lacking}",
                       (*evidence, f"the call: {where}" + (f": {frame.code}" if frame.code else "")),
                       advice.fix, packages=(b.lacking,))
    if new and frame.code and b.asked in frame.code:
        change = f"change `{frame.code}` to `{frame.code.replace(b.asked, new)}`"
    elif new:
        change = f"replace {b.asked} with {new}"
    else:
        change = f"replace {b.asked}, which the installed {b.lacking} no longer has (its changelog names the successor)"
    pin = advice.fix.commands[0] if advice and advice.removed and advice.fix.commands else ""
    summary = f"in {where}: {change}" + (f"; or keep the older {b.lacking} ({pin})" if pin else "")
    return Finding(TracebackKind.MISSING_NAME.value, Severity.ERROR, Area.LOG,
                   f"your code ({where}) calls {b.asked}, which the installed {b.lacking} does not have",
                   (*evidence, f"the call: {where}" + (f": {frame.code}" if frame.code else "")),
                   Fix(summary, (pin,) if pin else ()), packages=(b.lacking,))


_KERAS_WORD = re.compile(r"\bkeras\b", re.IGNORECASE)
# The refusal of a keyword in Python's words and in Keras' own: tf.keras' "('Keyword argument not understood:',
# 'border_mode')" and Keras 3's "Unrecognized keyword arguments passed to Dense: {'output_dim': 10}"
_KW_REFUSED = (_KWARG, re.compile(r"Keyword argument not understood:?'?,?\s{0,4}'?(?P<kw>\w{1,60})"),
               re.compile(r"Unrecognized keyword arguments?(?: passed to (?P<func>\w{1,60}))?: ?"
                          r"[\[{(]'(?P<kw>\w{1,60})'"))


def _callee(code: str, kw: str) -> str | None:
    """The callable whose parentheses hold ``kw=`` in a line of code (the innermost open call before it)."""
    at = re.search(rf"(?<![\w.]){re.escape(kw)} ?=(?!=)", code)
    if not at:
        return None
    found = None
    for c in re.finditer(r"([A-Za-z_][\w.]{0,80})\(", code[:at.start()]):
        inside = code[c.end():at.start()]
        if inside.count("(") == inside.count(")"):
            found = c[1]  # no parenthesis closes it before the keyword
    return found


def _refused_keyword(message: str) -> re.Match[str] | None:
    if "keyword" not in message.lower():
        return None
    return next((m for p in _KW_REFUSED if (m := p.search(message))), None)


def keras1_findings(text: str, name: str = "log") -> list[Finding]:
    """A call with a Keras 1 keyword that Keras 2 renamed, refused by a Keras that no longer translates it."""
    out: list[Finding] = []
    seen: set[str] = set()
    keras_in_sight: bool | None = None  # read once, and only when a refused keyword is found
    for chain in parse(text):
        for r in chain:
            m = _refused_keyword(r.message)
            if not m or m["kw"] in seen:
                continue
            if keras_in_sight is None:
                keras_in_sight = bool(_KERAS_WORD.search(text[:200_000]))
            new = keras1_keyword(m["kw"], keras_in_sight)
            if not new:
                continue
            seen.add(m["kw"])
            c = culprit(r.frames, "tensorflow")  # Keras' and TensorFlow's frames are one project here
            caller = c.dist if c and not c.own_code else None
            own = c.frame if c and c.own_code else None
            who = caller or (f"your code ({own.path}, line {own.line})" if own else "the code")
            renamed = " or ".join(f"`{n}=`" for n in new)
            head = _callee(own.code, m["kw"]) if own and own.code else None
            func = m.groupdict().get("func")
            call = f"{head}()" if head else f"{func}()" if func and not func.startswith("__") else "the call"
            if caller:
                summary = (f"upgrade {caller} to a release written for Keras 2, or run it with multi-backend Keras "
                           f"2.2.x on TensorFlow 1.x, which still translated Keras 1 names")
                commands: tuple[str, ...] = (f"pip install --upgrade {caller}",
                                             'pip install "keras<2.3" "tensorflow<2"')
            else:
                change = (f"in {own.path}, line {own.line}: change `{own.code}` to use {renamed}"
                          if own and own.code and f"{m['kw']}=" in own.code else f"change `{m['kw']}=` to {renamed}")
                summary = (f"{change} (Keras 2's names: `nb_epoch`->`epochs`, `border_mode`->`padding`, "
                           f"`output_dim`->`units`, `init`->`kernel_initializer`, ...); or run the code under the "
                           f"Keras it was written for (multi-backend Keras 2.2.x still translated Keras 1 names, with "
                           f"a warning, on TensorFlow 1.x)")
                commands = ('pip install "keras<2.3" "tensorflow<2"',)
            out.append(Finding(
                TracebackKind.ERA_MISMATCH.value, Severity.ERROR, Area.LOG,
                f"{who} was written for Keras 1: {call} was given `{m['kw']}=`, which Keras 2.0 renamed to "
                f"{renamed}, and the installed Keras no longer accepts the old name",
                (f"{name}: {r.line[:400]}", f"Keras 2's translation table: {m['kw']} -> {', '.join(new)}",
                 *((f"the call: {own.path}, line {own.line}: {own.code}",) if own and own.code else ())),
                Fix(summary, commands), source=KERAS1_SOURCE,
                packages=(caller, "keras") if caller else ("keras",)))
    return out


def traceback_findings(text: str, name: str = "log", renames: dict[str, str] | None = None) -> list[Finding]:
    out: list[Finding] = keras1_findings(text, name)
    for b in distinct(blames(text)):  # the same failure printed again (a retry loop, a traceback per rank) once
        f = finding(b, text, name, renames)
        if all(o.title != f.title for o in out):
            out.append(f)
    return out
