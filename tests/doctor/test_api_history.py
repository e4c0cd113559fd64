"""The API history (doctor/api/history.py, built by tools/api_history/build.py from released wheels), the ast
scanner it is built with (doctor/api/scan.py), its sentences in --log findings (doctor/api/advice.py via
logs/tracebacks.py) and --deep's scan of installed sources (doctor/api/deep.py and checks/api_rules.py).

Each history fact below was checked by hand in the wheels (or, before jax 0.4.16, the sdists) on PyPI:
https://pypi.org/project/jax/#history
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bdv2.doctor import load_matrix
from bdv2.doctor.api import deep as api_deep
from bdv2.doctor.api import scan as api_scan
from bdv2.doctor.api.advice import advise
from bdv2.doctor.api.history import History, load, to_ranges
from bdv2.doctor.diagnose import diagnose
from bdv2.doctor.logs.tracebacks import traceback_findings
from bdv2.doctor.probe.collect import collect
from bdv2.doctor.probe.snapshot import Dist, ProbeStatus

from .helpers import make_snap

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "api_history"


@pytest.fixture(scope="module")
def history() -> History:
    h = load()
    assert h is not None, "doctor/api/api_history.json.gz is missing: run tools/api_history/build.py"
    return h


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_history_build", TOOLS / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_index_matches_the_pinned_list(history: History) -> None:
    assert history.data["releases_sha256"] == hashlib.sha256((TOOLS / "releases.toml").read_bytes()).hexdigest()
    assert history.data["builder"] == _build_module().BUILDER_VERSION
    releases = history.releases("jax")
    assert releases[0] == "0.4.1" and "0.10.2" in releases and len(releases) >= 50
    assert (ROOT / "doctor" / "api" / "api_history.json.gz").stat().st_size < 1_500_000


@pytest.mark.parametrize(("dotted", "first", "last", "removed_in"), [
    # jax/__init__.py: _deprecations["tree_map"] maps to an object through 0.5.3, to None in 0.6.0
    ("jax.tree_map", "0.4.1", "0.5.3", "0.6.0"),
    # jax/interpreters/xla.py: DeviceArray in _deprecations through 0.4.10 (sdist), gone in 0.4.11
    ("jax.interpreters.xla.DeviceArray", "0.4.1", "0.4.10", "0.4.11"),
    # jax/random.py: KeyArray in _deprecations in 0.4.23, absent from 0.4.24
    ("jax.random.KeyArray", "0.4.1", "0.4.23", "0.4.24"),
    # jax/experimental/maps.py: in the 0.4.30 wheel, not in 0.4.31's
    ("jax.experimental.maps", "0.4.1", "0.4.30", "0.4.31"),
    # jax/core.py: "Var" -> jax.core.Var object in 0.5.3, None ("was removed in JAX v0.6.0") in 0.6.0
    ("jax.core.Var", "0.4.1", "0.5.3", "0.6.0"),
])
def test_removed_names(history: History, dotted: str, first: str, last: str, removed_in: str) -> None:
    v = history.verdict("jax", dotted)
    assert v is not None and (v.first, v.last, v.removed_in) == (first, last, removed_in)
    assert v.present_in(last) is True and v.present_in(removed_in) is False


@pytest.mark.parametrize(("dotted", "first"), [
    ("jax.extend.linear_util", "0.4.16"),  # the 0.4.14 sdist has jax/extend/__init__.py only; 0.4.15 is not on PyPI
    ("jax.tree.map", "0.4.25"),  # jax/tree.py first ships in the 0.4.25 wheel
])
def test_added_names(history: History, dotted: str, first: str) -> None:
    v = history.verdict("jax", dotted)
    assert v is not None and v.first == first and v.removed_in is None


def test_chains_are_judged_at_their_first_non_module(history: History) -> None:
    assert history.judged_key("jax", "jax.numpy.sum.__doc__") == "jax.numpy.sum"
    assert history.judged_key("jax", "jax.interpreters.xla.DeviceArray") == "jax.interpreters.xla.DeviceArray"
    assert history.judged_key("numpy_is_not_covered", "x.y") is None
    assert history.always_present("jax", "jax.numpy.sum")


def test_to_ranges() -> None:
    assert to_ranges([0, 1, 2, 5, 6, 9]) == [[0, 2], [5, 6], [9, 9]]


def test_module_names_reads_deprecation_tables_type_checking_and_del() -> None:
    src = """
import typing as _typing
from ._src.core import Var as Var, other
from ._src import thing
__all__ = ["listed"]
def f(): pass
class C: pass
_deprecations = {"gone": ("removed", None), "old": ("deprecated", _old)}
if _typing.TYPE_CHECKING:
    from ._src.core import old as old
else:
    __getattr__ = _deprecation_getattr(__name__, _deprecations)
del other
from .sub import *
"""
    names, stars, exports = api_scan.module_names(src, "jax.core")
    assert names == {"Var", "thing", "listed", "f", "C", "old"}
    assert stars == ["jax.sub"] and exports == {"listed"}
    assert api_scan.module_names("from .sub import *", "jax.core", is_package=True).stars == ["jax.core.sub"]
    assert api_scan.module_names("from . import a\n__all__ = ['x'] + a.__all__", "m").exports is None


def test_uses_skips_guarded_names() -> None:
    src = """
import jax, jax.numpy as jnp
from jax.experimental import maps
try:
    from jax.extend import linear_util as lu
except ImportError:
    from jax import linear_util as lu
if hasattr(jax, "Device"):
    jax.Device
ok = hasattr(jax, "pxla") and jax.pxla.ShardedDeviceArray
y = jax.tree_map(f, x) + jnp.sum(x) + lu.wrap_init(f)
"""
    found = api_scan.uses(src)
    assert {"jax.tree_map", "jax.numpy.sum", "jax.experimental.maps"} <= found
    assert not any("linear_util" in n or "Device" in n or "pxla" in n for n in found)


def test_advice_removed_and_added(history: History) -> None:
    a = advise("jax", "jax.interpreters.xla.DeviceArray", "chex", "0.4.30", "0.1.5", history)
    assert a is not None and a.removed
    assert a.sentence.startswith("`jax.interpreters.xla.DeviceArray` was removed in jax 0.4.11 (last in 0.4.10); "
                                 "`chex 0.1.5` still uses it: upgrade `chex` to a release that does not")
    assert a.sentence.endswith("or keep jax < 0.4.11.")
    b = advise("jax", "jax.extend.linear_util", "distrax", "0.4.14", None, history)
    assert b is not None and not b.removed
    assert b.sentence == "`jax.extend.linear_util` first appeared in jax 0.4.16; `distrax` needs jax >= 0.4.16."
    assert advise("jax", "jax.numpy.sum", "flax", "0.10.2", None, history) is None


def test_caller_history_names_the_release_that_stopped_using_a_name(history: History) -> None:
    uses = history.uses("flax", "jax.tree_map")
    assert uses is not None and uses.ranges, "some flax release of the list uses jax.tree_map"
    first = history.first_without("flax", "jax.tree_map")
    assert first is not None and uses.present_in(first) is False
    a = advise("jax", "jax.tree_map", "flax", "0.6.0", uses.last, history)
    assert a is not None and f"flax {first} is the first release that does not use it" in a.sentence
    assert a.fix.commands[0] == f'pip install "flax>={first}"'


# https://github.com/instadeepai/jumanji/issues/149 (pytest), with the versions a pip line would show
PYTEST = """\
Successfully installed chex-0.1.5 jax-0.4.13
jumanji/env.py:20: in <module>
    import chex
/opt/hostedtoolcache/Python/3.9.16/x64/lib/python3.9/site-packages/chex/_src/pytypes.py:32: in <module>
    ArrayDevice = jax.interpreters.xla.DeviceArray
E   AttributeError: module 'jax.interpreters.xla' has no attribute 'DeviceArray'
"""


def test_log_finding_carries_the_history_sentence() -> None:
    (f,) = traceback_findings(PYTEST)
    assert f.id == "log-era-mismatch"
    line = next(e for e in f.evidence if e.startswith("API history: "))
    assert "was removed in jax 0.4.11 (last in 0.4.10); `chex 0.1.5` still uses it" in line
    assert f.fix is not None and 'pip install "jax<0.4.11"' in f.fix.commands


def test_log_finding_for_a_name_newer_than_the_installed_jax() -> None:
    log = ("jax version 0.4.14\nTraceback (most recent call last):\n"
           '  File "/venv/lib/python3.10/site-packages/distrax/_src/utils/math.py", line 3, in <module>\n'
           "    from jax.extend import linear_util\n"
           "ImportError: cannot import name 'linear_util' from 'jax.extend'\n")
    (f,) = traceback_findings(log)
    assert "API history: `jax.extend.linear_util` first appeared in jax 0.4.16; `distrax` needs jax >= 0.4.16." \
        in f.evidence
    assert f.fix is not None and f.fix.commands[0] == 'pip install "jax>=0.4.16"'


def _fake_site(tmp: Path) -> Path:
    site = tmp / "site-packages"
    (site / "oldpkg").mkdir(parents=True)
    (site / "oldpkg" / "__init__.py").write_text(
        "import jax\nfrom jax.experimental import maps\n\ndef f(x):\n    return jax.tree_map(abs, x)\n")
    info = site / "oldpkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: oldpkg\nVersion: 1.0\nRequires-Dist: jax>=0.4\n")
    (info / "RECORD").write_text("oldpkg/__init__.py,,\noldpkg-1.0.dist-info/METADATA,,\n"
                                 "oldpkg-1.0.dist-info/RECORD,,\n")
    return site


def test_deep_scan_finds_a_removed_name_in_a_fake_package(tmp_path: Path, history: History) -> None:
    site = _fake_site(tmp_path)
    snap = make_snap({"jax": "0.10.2"})
    snap = snap.__class__(**{**snap.__dict__, "distributions": (
        *snap.distributions, Dist("oldpkg", "1.0", ("jax>=0.4",), str(site)))})
    r = api_deep.scan(snap, history, cache=tmp_path / "cache")
    assert r.status is ProbeStatus.OK
    assert {s["name"] for s in r.output["stale"]} == {"jax.tree_map", "jax.experimental.maps"}
    found = [f for f in diagnose(snap.with_probes((r,)), load_matrix()) if f.id == "jax-api-stale-use"]
    assert {f.title for f in found} == {"oldpkg 1.0 uses jax.tree_map, which jax 0.10.2 does not have",
                                        "oldpkg 1.0 uses jax.experimental.maps, which jax 0.10.2 does not have"}
    assert any("was removed in jax 0.6.0 (last in 0.5.3)" in e for f in found for e in f.evidence)
    assert list((tmp_path / "cache").glob("oldpkg-1.0-*.json")), "cached by distribution name and version"


def test_deep_scan_skips_an_uncovered_jax(history: History) -> None:
    r = api_deep.scan(make_snap({"jax": "0.3.25"}), history)
    assert r.status is ProbeStatus.SKIPPED and "does not cover jax 0.3.25" in r.error


def test_deep_scan_has_no_false_positive_on_this_environment(tmp_path: Path, history: History) -> None:
    """The [train] environment this suite runs in is healthy: no installed package uses a missing jax name."""
    pytest.importorskip("flax")
    snap = collect(sys.executable)
    for read_sources in (True, False):  # the installed files themselves, then the history's scan of the wheels
        r = api_deep.scan(snap, history, cache=tmp_path, read_sources=read_sources)
        if r.status is ProbeStatus.SKIPPED:
            pytest.skip(r.error)
        assert r.status is ProbeStatus.OK and r.output["scanned"]
        assert r.output["stale"] == []


def test_deep_scan_answers_a_covered_release_from_the_history(history: History) -> None:
    """flax 0.8.2's wheel uses jax.tree_map (flax/experimental/nnx/nnx/spmd.py), which jax 0.6.0 removed."""
    snap = make_snap({"jax": "0.6.0", "flax": "0.8.2"}, requires={"flax": ["jax>=0.4.19"]})
    r = api_deep.scan(snap, history)
    assert r.output["scanned"] == ["flax 0.8.2 (its wheel, as scanned for the API history)"]
    assert {"caller": "flax", "version": "0.8.2", "name": "jax.tree_map"} in r.output["stale"]


@pytest.mark.slow
def test_builder_reproduces_two_releases(tmp_path: Path, history: History) -> None:
    """Download two small wheels again and check the builder gives the shipped entries for them."""
    build = _build_module()
    for pkg, version in (("distrax", "0.1.9"), ("chex", "0.1.92")):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        f"{pkg}=={version}", "-d", str(tmp_path / pkg)], check=True)
        keys, _, _ = build.scan(pkg, build.archive(pkg, version, tmp_path))
        i = history.releases(pkg).index(version)
        shipped = {k for k, r in history.packages[pkg]["names"].items()  # type: ignore[attr-defined]
                   if any(a <= i <= b for a, b in r)}
        assert build.with_parents(keys) == shipped


# jax 0.6.0's own message (jax/__init__.py's _deprecations entry), raised in flax 0.8.2's nnx code
TREE_MAP = """\
Successfully installed flax-0.8.2 jax-0.6.0 jaxlib-0.6.0
Traceback (most recent call last):
  File "/home/u/venv/lib/python3.11/site-packages/flax/experimental/nnx/nnx/spmd.py", line 59, in get_partition_spec
    return jax.tree_map(
  File "/home/u/venv/lib/python3.11/site-packages/jax/_src/deprecations.py", line 54, in getattr
    raise AttributeError(message)
AttributeError: jax.tree_map was removed in JAX v0.6.0: use jax.tree.map (jax v0.4.25 or newer) or \
jax.tree_util.tree_map (any JAX version).
"""


def test_log_version_is_the_one_that_lacks_the_name() -> None:
    """The message names jax 0.4.25 too; the history picks 0.6.0 (the seen version without the name)."""
    (f,) = [f for f in traceback_findings(TREE_MAP) if f.id == "log-era-mismatch"]
    assert ("API history: `jax.tree_map` was removed in jax 0.6.0 (last in 0.5.3); `flax 0.8.2` still uses it: "
            "upgrade `flax` to a release that does not (flax 0.8.3 is the first release that does not use it), "
            "or keep jax < 0.6.0.") in f.evidence
    assert f.fix is not None and f.fix.commands == ('pip install "flax>=0.8.3"', "bdv2 doctor")


@pytest.mark.parametrize(("pkg", "dotted", "first", "removed_in"), [
    # numpy/__init__.pyi of 1.26.4 binds float_; 2.0.2 has it only in _expired_attrs_2_0 (AttributeError)
    ("numpy", "numpy.float_", "1.24", "2.0"),
    # numpy 1.26.4 lists "bool" in __former_attrs__ (AttributeError); 2.0.2 imports bool from numpy._core
    ("numpy", "numpy.bool", "2.0", None),
    # scipy/integrate/_quadrature.py: 'simps' in __all__ in 1.13.1, gone in 1.14.1 (`from ._quadrature import *`)
    ("scipy", "scipy.integrate.simps", "1.10", "1.14"),
])
def test_minor_release_facts(history: History, pkg: str, dotted: str, first: str, removed_in: str | None) -> None:
    v = history.verdict(pkg, dotted)
    assert v is not None and (v.first, v.removed_in) == (first, removed_in)
    assert v.present_in(f"{first}.1") is True  # a patch release is judged by its minor


def test_no_claim_where_a_compiled_module_hides_names(history: History) -> None:
    """scipy 1.15's spatial/__init__.py star-imports the compiled _ckdtree, whose .pyi 1.14 still shipped."""
    assert "scipy.spatial" in history.packages["scipy"]["opaque"]
    assert history.verdict("scipy", "scipy.spatial.cKDTree") is None


def test_the_static_doctor_names_an_orbax_release_newer_than_the_installed_jax() -> None:
    """The set-up guide's era: jax 0.4.13 beside an orbax-checkpoint pip resolved later. The static doctor reads
    the API history for the installed releases (nothing imported, no --deep) and names the names jax lacks."""
    snap = make_snap({"jax": "0.4.13", "jaxlib": "0.4.13", "orbax-checkpoint": "0.5.3"},
                             requires={"orbax-checkpoint": ["jax>=0.4.9"]})
    stale = [f for f in diagnose(snap, load_matrix()) if f.id == "jax-api-stale-use"]
    assert stale and all(f.title.startswith("orbax-checkpoint 0.5.3 uses jax.") for f in stale)
    assert any("jax.random.wrap_key_data" in f.title for f in stale)
    assert "never imported" in stale[0].evidence[0]
    fresh = make_snap({"jax": "0.4.30", "jaxlib": "0.4.30", "orbax-checkpoint": "0.5.3"},
                              requires={"orbax-checkpoint": ["jax>=0.4.9"]})
    assert not [f for f in diagnose(fresh, load_matrix()) if f.id == "jax-api-stale-use"]
