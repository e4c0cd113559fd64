"""Table tests: Snapshot literals -> expected findings, for the data rules and the built-in checks."""

from __future__ import annotations

import pytest

from bdv2.doctor import diagnose, exit_code
from bdv2.doctor.findings import Severity
from bdv2.doctor.matrix import Matrix
from bdv2.doctor.probe.snapshot import Dist, ProbeResult

from . import helpers


def ids(findings: list) -> set[str]:
    return {f.id for f in findings}


def errors(findings: list) -> set[str]:
    return {f.id for f in findings if f.severity is Severity.ERROR}


# (installed versions, python, rule id expected to fire, a string its fix commands must contain)
FIRES = [
    pytest.param({"tensorflow-cpu": "2.15.1", "tensorflow-probability": "0.25.0"}, "3.11.7",
                 "tfp-too-new-for-tf", "tensorflow-probability==0.23.0", id="tfp-0.25-with-tf-2.15"),
    pytest.param({"tensorflow": "2.14.0", "tensorflow-probability": "0.21.0"}, "3.11.7",
                 "tfp-too-old-for-tf", "tensorflow-probability==", id="arg-specs-tfp-0.21-tf-2.14"),
    pytest.param({"tensorflow-probability": "0.22.1", "jax": "0.4.13", "jaxlib": "0.4.13"}, "3.11.7",
                 "tfp-jax-substrate-old-jax", '"jax==0.4.14"', id="seed-tfp-0.22.1-jax-0.4.13"),
    pytest.param({"tensorflow-probability": "0.25.0", "jax": "0.7.0", "jaxlib": "0.7.0"}, "3.11.7",
                 "tfp-jax-substrate-new-jax", "tfp-nightly", id="tfp-0.25-jax-0.7"),
    pytest.param({"tensorflow-probability": "0.25.0", "tfp-nightly": "0.26.0.dev20261027"}, "3.11.7",
                 "tfp-and-tfp-nightly", "uninstall", id="tfp-twice"),
    pytest.param({"tensorstore": "0.1.86", "ml-dtypes": "0.4.1"}, "3.11.7",
                 "tensorstore-ml-dtypes-float8", "ml-dtypes>=0.5.0", id="tensorstore-float8"),
    pytest.param({"tensorstore": "0.1.80", "ml-dtypes": "0.3.2", "tensorflow-cpu": "2.15.1"}, "3.11.7",
                 "tensorstore-vs-tensorflow-ml-dtypes", "tensorstore<0.1.75", id="tensorstore-vs-tf"),
    pytest.param({"tensorflow-cpu": "2.15.1", "ml-dtypes": "0.5.3"}, "3.11.7",
                 "tensorflow-ml-dtypes", "ml-dtypes~=0.3.1", id="seed-ml-dtypes-0.5-tf-2.15"),
    pytest.param({"tensorflow": "2.14.0", "ml-dtypes": "0.3.2"}, "3.11.7",
                 "tensorflow-ml-dtypes-e4m3b11", "ml-dtypes==0.2.0", id="tf-2.14-ml-dtypes-0.3-import-fails"),
    pytest.param({"tensorflow-cpu": "2.15.1", "numpy": "2.1.3"}, "3.11.7",
                 "tensorflow-numpy2", "numpy<2", id="tf-2.15-numpy-2"),
    pytest.param({"tensorflow": "2.14.0", "numpy": "2.0.0"}, "3.11.7",
                 "tensorflow-numpy2", "numpy<2", id="tf-2.14-has-no-bound"),
    pytest.param({"jax": "0.4.13", "jaxlib": "0.4.13", "numpy": "2.0.1"}, "3.11.7",
                 "jaxlib-numpy2", "numpy<2", id="old-jaxlib-numpy-2"),
    pytest.param({"jax": "0.4.13", "jaxlib": "0.4.13", "scipy": "1.13.1"}, "3.11.7",
                 "jax-scipy-113", "scipy<1.13", id="scipy-1.13-jax-0.4.13"),
    pytest.param({"jax": "0.6.2", "jaxlib": "0.6.2", "tensorflow-cpu": "2.18.0"}, "3.11.7",
                 "jax-vs-tensorflow-ml-dtypes", "tensorflow-cpu>=2.19", id="jax-0.6-tf-2.18.0"),
    pytest.param({"jax": "0.8.0", "jaxlib": "0.8.0", "tensorflow": "2.17.1"}, "3.11.7",
                 "jax-vs-tensorflow-numpy", "tensorflow-cpu>=2.19", id="jax-0.8-tf-2.17"),
    pytest.param({"chex": "0.1.82", "jax": "0.4.25", "jaxlib": "0.4.25"}, "3.11.7",
                 "chex-old-new-jax", "chex>=", id="chex-keyarray"),
    pytest.param({"chex": "0.1.6", "jax": "0.4.14", "jaxlib": "0.4.13"}, "3.10.12",
                 "chex-sharded-device-array", "chex==0.1.82", id="original-chex-0.1.6-jax-0.4.14"),
    pytest.param({"flax": "0.7.4", "jax": "0.4.30", "jaxlib": "0.4.30"}, "3.11.7",
                 "flax-old-new-jax", "flax>=0.7.5", id="flax-keyarray"),
    pytest.param({"flax": "0.12.6", "jax": "0.11.0", "jaxlib": "0.11.0"}, "3.12.3",
                 "flax-jax-011", "flax>=0.12.7", id="flax-get-opaque-trace-state"),
    pytest.param({"distrax": "0.1.5", "jax": "0.7.0", "jaxlib": "0.7.0"}, "3.11.7",
                 "distrax-old-new-jax", "distrax>=0.1.7", id="distrax-0.1.5-jax-0.7"),
    pytest.param({"tensorflow": "2.16.1", "protobuf": "5.28.0"}, "3.11.7",
                 "tensorflow-protobuf", "protobuf<5", id="tf-protobuf-5"),
    pytest.param({"jax": "0.6.2", "jaxlib": "0.6.2", "jax-cuda12-plugin": "0.6.2", "jax-cuda12-pjrt": "0.6.2",
                  "nvidia-cudnn-cu12": "9.5.1.17"}, "3.11.7",
                 "cudnn-too-old-for-jax", "nvidia-cudnn-cu12>=9.8", id="cudnn-9.5-jax-0.6"),
    pytest.param({"jax": "0.4.20", "jaxlib": "0.4.20+cuda12.cudnn89", "nvidia-cudnn-cu12": "9.1.0.70"}, "3.11.7",
                 "cudnn9-with-cudnn8-jaxlib", "nvidia-cudnn-cu12==8.9", id="cudnn9-old-jaxlib-local-version"),
    pytest.param({"jax": "0.4.30", "jaxlib": "0.4.30", "jax-cuda12-plugin": "0.4.30", "jax-cuda12-pjrt": "0.4.30",
                  "nvidia-cudnn-cu12": "8.9.7.29"}, "3.11.7",
                 "cudnn8-with-cudnn9-jaxlib", "nvidia-cudnn-cu12>=9.1", id="tf216-cudnn8-jax-0.4.30"),
    pytest.param({"jax": "0.6.2", "jaxlib": "0.6.2", "jax-cuda12-plugin": "0.6.2", "jax-cuda12-pjrt": "0.6.2",
                  "nvidia-cudnn-cu12": "9.10.0.56"}, "3.11.7",
                 "cudnn-9100-binary-break", ">=9.10.1", id="cudnn-9.10.0"),
    pytest.param({"jax": "0.4.13", "jaxlib": "0.4.13", "nvidia-cudnn-cu12": "8.9.7.29"}, "3.11.7",
                 "nvidia-wheels-cpu-jaxlib", "cuda12", id="seed-cpu-jaxlib-with-nvidia-wheels"),
    pytest.param({"tfp-nightly": "0.26.0.dev20261027", "tensorflow-cpu": "2.21.0"}, "3.12.1",
                 "tfp-distutils-python312", "setuptools", id="tfp-distutils-3.12"),
]


@pytest.mark.parametrize(("versions", "python", "rule_id", "in_fix"), FIRES)
def test_rule_fires_with_its_fix(matrix: Matrix, versions: dict, python: str, rule_id: str, in_fix: str) -> None:
    found = {f.id: f for f in diagnose(helpers.make_snap(versions, python=python), matrix)}
    assert rule_id in found, f"{rule_id} did not fire; got {sorted(found)}"
    fix = found[rule_id].fix
    assert fix is not None
    assert any(in_fix in c for c in fix.commands), fix.commands


# Healthy neighbours of the cases above: the same packages one step to the right side of the line.
QUIET = [
    pytest.param({"tensorflow-cpu": "2.18.0", "tensorflow-probability": "0.25.0"}, id="tfp-0.25-tf-2.18"),
    pytest.param({"tensorflow": "2.15.1", "tensorflow-probability": "0.22.1"}, id="tfp-0.22.1-tf-2.15-works"),
    pytest.param({"tensorflow-probability": "0.22.1", "jax": "0.4.16", "jaxlib": "0.4.16"}, id="tfp-0.22.1-jax-0.4.16"),
    pytest.param({"tensorflow-probability": "0.21.0", "jax": "0.4.13", "jaxlib": "0.4.13"}, id="tfp-0.21-jax-0.4.13"),
    pytest.param({"tfp-nightly": "0.26.0.dev20261027", "jax": "0.10.2", "jaxlib": "0.10.2"}, id="nightly-new-jax"),
    pytest.param({"tensorstore": "0.1.86", "ml-dtypes": "0.5.0"}, id="tensorstore-ml-dtypes-0.5"),
    pytest.param({"tensorstore": "0.1.74", "ml-dtypes": "0.3.2", "tensorflow-cpu": "2.15.1"}, id="old-tensorstore-tf"),
    pytest.param({"jax": "0.4.13", "jaxlib": "0.4.13", "scipy": "1.12.0"}, id="scipy-1.12-is-fine"),
    pytest.param({"tensorflow-cpu": "2.19.0", "numpy": "2.1.3"}, id="tf-2.19-numpy-2"),
    pytest.param({"flax": "0.12.7", "jax": "0.11.0", "jaxlib": "0.11.0"}, id="flax-0.12.7-jax-0.11"),
]


@pytest.mark.parametrize("versions", QUIET)
def test_no_error_on_good_neighbours(matrix: Matrix, versions: dict) -> None:
    assert errors(diagnose(helpers.make_snap(versions), matrix)) == set()


@pytest.mark.parametrize(
    ("versions", "title_part", "cmd_part"),
    [
        pytest.param({"jax": "0.10.2", "jaxlib": "0.9.2"}, "needs jaxlib", '"jaxlib==0.10.2"', id="jaxlib-too-old"),
        pytest.param({"jax": "0.4.30", "jaxlib": "0.4.31"}, "newer than jax", '"jax==0.4.31"', id="jaxlib-too-new"),
        pytest.param({"jax": "0.4.16", "jaxlib": "0.4.11"}, "needs jaxlib >=0.4.14", "jaxlib==0.4.16",
                     id="pre-0.4.30-table"),
        pytest.param({"jax": "0.10.2"}, "without jaxlib", "jaxlib==0.10.2", id="no-jaxlib"),
    ],
)
def test_jax_jaxlib_lockstep(matrix: Matrix, versions: dict, title_part: str, cmd_part: str) -> None:
    reqs = {"jax": ["jaxlib<=0.10.2,>=0.10.1"]} if versions.get("jax") == "0.10.2" else {}
    found = [f for f in diagnose(helpers.make_snap(versions, reqs), matrix) if f.id == "jax-jaxlib-lockstep"]
    assert len(found) == 1 and title_part in found[0].title, [f.title for f in found]
    assert any(cmd_part in c for c in found[0].fix.commands)  # type: ignore[union-attr]


def test_local_version_label_is_ignored(matrix: Matrix) -> None:
    snap = helpers.make_snap({"jax": "0.4.13", "jaxlib": "0.4.13+cuda12.cudnn89"})
    assert "jax-jaxlib-lockstep" not in ids(diagnose(snap, matrix))


@pytest.mark.parametrize(
    ("versions", "expect"),
    [
        pytest.param({"jax": "0.10.2", "jaxlib": "0.10.2", "jax-cuda12-plugin": "0.9.2", "jax-cuda12-pjrt": "0.9.2"},
                     "is not jaxlib's version 0.10.2", id="plugin-behind-after-upgrading-jax"),
        pytest.param({"jax": "0.10.2", "jaxlib": "0.10.2", "jax-cuda12-plugin": "0.10.2", "jax-cuda12-pjrt": "0.10.1"},
                     "differ", id="plugin-pjrt-differ"),
        pytest.param({"jax": "0.10.2", "jaxlib": "0.10.2", "jax-cuda13-plugin": "0.10.2"},
                     "without jax-cuda13-pjrt", id="no-pjrt"),
    ],
)
def test_plugin_lockstep(matrix: Matrix, versions: dict, expect: str) -> None:
    found = [f for f in diagnose(helpers.make_snap(versions), matrix) if f.id == "jax-plugin-lockstep"]
    assert found and expect in found[0].title
    assert found[0].severity is Severity.ERROR
    assert any("==0.10.2" in c for c in found[0].fix.commands)  # type: ignore[union-attr]


@pytest.mark.parametrize(("jax", "jaxlib", "plugin", "bad"), [
    pytest.param("0.5.3", "0.5.3", "0.5.1", True, id="0.5.3-ignores-an-older-plugin"),
    pytest.param("0.6.2", "0.6.1", "0.6.2", True, id="plugin-newer-than-jaxlib-0.6.1"),
    pytest.param("0.6.2", "0.6.1", "0.6.1", False, id="plugin-equal-to-jaxlib"),
    pytest.param("0.4.31", "0.4.30", "0.4.31", False, id="before-0.5.3-between-jaxlib-and-jax-is-fine"),
])
def test_plugin_must_equal_jaxlib_from_053(matrix: Matrix, jax: str, jaxlib: str, plugin: str, bad: bool) -> None:
    """jaxlib >= 0.5.3 ignores a plugin of another version (jaxlib/plugin_support.py at jax-v0.5.3)."""
    versions = {"jax": jax, "jaxlib": jaxlib, "jax-cuda12-plugin": plugin, "jax-cuda12-pjrt": plugin}
    found = [f for f in diagnose(helpers.make_snap(versions), matrix)
             if f.id == "jax-plugin-lockstep" and f.severity is Severity.ERROR]
    assert bool(found) == bad, [f.title for f in found]
    if bad:
        assert any(f'"jax-cuda12-plugin=={jaxlib}"' in c for c in found[0].fix.commands)  # type: ignore[union-attr]


def test_requires_dist_uses_markers_and_skips_extras(matrix: Matrix) -> None:
    reqs = {"somepkg": ['numpy<2; python_version < "3.11"', "scipy>=1.14", 'jaxlib==0.1; extra == "ci"',
                        "missingpkg>=1"]}
    snap = helpers.make_snap({"somepkg": "1.0", "numpy": "2.4.6", "scipy": "1.13.0"}, reqs)
    found = [f for f in diagnose(snap, matrix) if f.id == "requires-dist"]
    titles = " | ".join(f.title for f in found)
    assert "scipy>=1.14, but scipy 1.13.0" in titles
    assert "missingpkg>=1, which is not installed" in titles
    assert "numpy" not in titles and "jaxlib" not in titles
    assert len(found) == 2


def test_specific_rule_replaces_generic_requires_dist(matrix: Matrix) -> None:
    reqs = {"tensorflow-cpu": ["ml-dtypes~=0.3.1", "numpy<2.0.0,>=1.23.5"]}
    found = diagnose(helpers.make_snap({"tensorflow-cpu": "2.15.1", "ml-dtypes": "0.5.3", "numpy": "1.26.4"}, reqs),
                     matrix)
    assert "tensorflow-ml-dtypes" in ids(found)
    assert "requires-dist" not in ids(found)


def test_extras_in_use_checks_the_nvidia_wheels(matrix: Matrix) -> None:
    reqs = {
        "jax-cuda12-plugin": ["jax-cuda12-pjrt==0.10.2",
                              'nvidia-cudnn-cu12<10.0,>=9.8; sys_platform == "linux" and extra == "with-cuda"',
                              'nvidia-cublas-cu12>=12.1.3.1; sys_platform == "linux" and extra == "with-cuda"'],
        "jax": ["jaxlib<=0.10.2,>=0.10.1", 'jaxlib==0.10.1; extra == "ci"',
                'jax-cuda12-plugin[with-cuda]<=0.10.2,>=0.10.2; extra == "cuda12"'],
    }
    versions = {"jax": "0.10.2", "jaxlib": "0.10.2", "jax-cuda12-plugin": "0.10.2", "jax-cuda12-pjrt": "0.10.2",
                "nvidia-cudnn-cu12": "9.8.0.87", "nvidia-cublas-cu12": "12.0.2.224"}
    found = [f for f in diagnose(helpers.make_snap(versions, reqs), matrix) if f.id == "extras-in-use"]
    assert [f.packages for f in found] == [("jax-cuda12-plugin", "nvidia-cublas-cu12")]
    assert "with-cuda" in found[0].title
    # The jax 'ci' extra (jaxlib==0.10.1) is not in use: it names no extra-only package.
    assert not any("jaxlib" in f.title for f in found)


def test_shadowed_copy_is_reported() -> None:
    from bdv2.doctor import load_matrix

    hidden = Dist("numpy", "1.26.4", location="/root/.local/lib/python3.11/site-packages")
    snap = helpers.make_snap({"numpy": "2.4.6"}, shadowed=(hidden,))
    found = [f for f in diagnose(snap, load_matrix()) if f.id == "shadowed-dists"]
    assert found and "1.26.4 is hidden" in found[0].title and found[0].severity is Severity.WARNING


def test_failed_probe_is_named_by_its_signature(matrix: Matrix) -> None:
    err = ("Traceback (most recent call last):\n  File \"<string>\", line 3, in <module>\n"
           "AttributeError: module 'jax.dtypes' has no attribute 'prng_key'")
    snap = helpers.make_snap({"jax": "0.4.13", "jaxlib": "0.4.13"},
                     probes=(ProbeResult("distrax", "failed", 3.2, error=err),))
    found = [f for f in diagnose(snap, matrix) if f.id == "runtime-probe-failed"]
    assert len(found) == 1
    assert "jax < 0.4.14" in found[0].title
    assert any("prng_key" in e for e in found[0].evidence)
    assert any("jax==0.4.14" in c for c in found[0].fix.commands)  # type: ignore[union-attr]


def test_unknown_probe_failure_still_reported(matrix: Matrix) -> None:
    snap = helpers.make_snap({"jax": "0.10.2"},
                             probes=(ProbeResult("jax", "timeout", 120.0, error="no answer in 120s"),))
    found = [f for f in diagnose(snap, matrix) if f.id == "runtime-probe-failed"]
    assert found and found[0].severity is Severity.ERROR and "timeout" in found[0].title


def test_nearest_row_for_the_seed_pins(matrix: Matrix) -> None:
    seed = {"jax": "0.4.13", "jaxlib": "0.4.13", "tensorflow-probability": "0.22.1", "tensorflow-cpu": "2.15.1",
            "ml-dtypes": "0.5.3", "scipy": "1.11.4", "numpy": "1.26.4", "flax": "0.7.0", "optax": "0.1.5"}
    found = {f.id: f for f in diagnose(helpers.make_snap(seed), matrix)}
    assert {"tfp-jax-substrate-old-jax", "tensorflow-ml-dtypes"} <= set(found)
    near = found["nearest-row"]
    assert "seed-era-min-cpu" in near.title
    cmd = " ".join(near.fix.commands)  # type: ignore[union-attr]
    # The smallest move: jax to 0.4.14 over the same jaxlib 0.4.13; TFP stays, ml-dtypes goes back into TF 2.15.1's
    # range (and chex, which jax 0.4.14 needs at 0.1.82).
    assert '"jax==0.4.14"' in cmd and "jaxlib" not in cmd and '"ml-dtypes==0.3.2"' in cmd
    assert "tensorflow-probability" not in cmd


def test_nearest_row_keeps_the_tensorflow_variant(matrix: Matrix) -> None:
    snap = helpers.make_snap({"jax": "0.10.2", "jaxlib": "0.9.2", "tensorflow": "2.21.0"},
                     {"jax": ["jaxlib<=0.10.2,>=0.10.1"]})
    near = next(f for f in diagnose(snap, matrix) if f.id == "nearest-row")
    cmd = " ".join(near.fix.commands)  # type: ignore[union-attr]
    assert "cpu-current" in near.title and '"jaxlib==0.10.2"' in cmd and "tensorflow" not in cmd


def _version_in(spec: object, candidates: list[str]) -> str:
    from packaging.version import Version

    for c in candidates:
        if spec.contains(Version(c), prereleases=True):  # type: ignore[attr-defined]
            return c
    raise AssertionError(f"no candidate version inside {spec}")


def _candidates(matrix: Matrix) -> list[str]:
    import re

    numbers = sorted({m for r in matrix.rules for c in r.when for m in re.findall(r"\d+(?:\.\d+)+", str(c.spec))})
    candidates = ["0.0.1", "1.0", *numbers]
    # Also a little below and above each boundary, so '<X' and '>X' find a version.
    for n in numbers:
        parts = [int(x) for x in n.split(".")]
        candidates.append(".".join(map(str, [*parts[:-1], parts[-1] + 1])))
        if parts[-1] > 0:
            candidates.append(".".join(map(str, [*parts[:-1], parts[-1] - 1])))
        elif len(parts) > 1 and parts[-2] > 0:
            candidates.append(".".join(map(str, [*parts[:-2], parts[-2] - 1, 99])))
    return candidates


def _firing_versions(rule: object, matrix: Matrix) -> tuple[dict[str, str], str]:
    """One installed version inside each of the rule's `when` conditions (and the python they need)."""
    versions, python = {}, "3.11.7"
    for cond in rule.when:  # type: ignore[attr-defined]
        v = _version_in(cond.spec, [*_candidates(matrix), "3.11.7", "3.12.1", "3.10.4"])
        if cond.key == "python":
            python = v if v.count(".") == 2 else v + ".0"
        else:
            versions[matrix.members(cond.key)[0]] = v
    if rule.needs_jax_cuda:  # type: ignore[attr-defined]  # and jax's own CUDA backend, at the jaxlib's version
        versions.setdefault("jax-cuda12-plugin", versions.get("jaxlib", "0.6.2").split("+")[0])
    return versions, python


def test_every_data_rule_fires_on_its_own_conditions(matrix: Matrix) -> None:
    """Each `when` rule, given one installed version inside each condition, fires (and carries a fix)."""
    for rule in (r for r in matrix.rules if r.when):
        versions, python = _firing_versions(rule, matrix)
        found = [f for f in diagnose(helpers.make_snap(versions, python=python), matrix) if f.id == rule.id]
        assert found, f"rule {rule.id} did not fire on {versions} (python {python})"
        assert found[0].fix is not None and found[0].fix.summary, rule.id


def test_a_rows_known_warning_is_a_note_on_that_row(matrix: Matrix) -> None:
    from bdv2.doctor.matrix.verify import row_versions

    row = matrix.row("cpu-current")
    assert "tfp-tf-substrate-needs-tf-keras" in row.known_warnings
    on_row = diagnose(helpers.make_snap(row_versions(row)), matrix)
    note = next(f for f in on_row if f.id == "tfp-tf-substrate-needs-tf-keras")
    assert note.severity is Severity.INFO and "accepted on row cpu-current" in note.title
    assert not [f for f in on_row if f.severity is not Severity.INFO]
    assert exit_code(on_row, strict=True) == 0
    # Off the row (one package moved), the same warning is a warning again.
    off_row = diagnose(helpers.make_snap({**row_versions(row), "scipy": "1.16.0"}), matrix)
    warning = next(f for f in off_row if f.id == "tfp-tf-substrate-needs-tf-keras")
    assert warning.severity is Severity.WARNING and "accepted" not in warning.title


# PyTorch's CUDA wheels beside a CPU jax: common in labs, and jax never loads them. No cuDNN rule may fire.
TORCH_BESIDE_CPU_JAX = [
    pytest.param({"jax": "0.4.30", "jaxlib": "0.4.30", "torch": "2.3.1", "nvidia-cudnn-cu12": "8.9.2.26",
                  "nvidia-cublas-cu12": "12.1.3.1"}, id="torch-2.3-cudnn8-jax-0.4.30"),
    pytest.param({"jax": "0.4.35", "jaxlib": "0.4.35", "torch": "2.5.1", "nvidia-cudnn-cu12": "9.1.0.70"},
                 id="torch-2.5-cudnn9.1-jax-0.4.35"),
    pytest.param({"jax": "0.4.20", "jaxlib": "0.4.20", "torch": "2.7.1", "nvidia-cudnn-cu12": "9.10.0.56"},
                 id="torch-cudnn-9.10.0-old-jax"),
]


@pytest.mark.parametrize("versions", TORCH_BESIDE_CPU_JAX)
def test_pytorch_wheels_beside_cpu_jax_raise_no_cudnn_error(matrix: Matrix, versions: dict) -> None:
    found = diagnose(helpers.make_snap(versions, python="3.11.7"), matrix)
    assert not [f.id for f in found if "cudnn" in f.id], [f.id for f in found]
    assert not [f for f in found if f.severity in (Severity.ERROR, Severity.WARNING) and f.area.value == "cuda"]
    note = next(f for f in found if f.id == "nvidia-wheels-cpu-jaxlib")
    assert note.severity is Severity.INFO and "PyTorch" in note.title


def test_the_same_cudnn_wheel_is_an_error_once_jax_has_a_cuda_backend(matrix: Matrix) -> None:
    versions = {"jax": "0.4.30", "jaxlib": "0.4.30", "torch": "2.3.1", "nvidia-cudnn-cu12": "8.9.2.26",
                "jax-cuda12-plugin": "0.4.30", "jax-cuda12-pjrt": "0.4.30"}
    found = {f.id: f for f in diagnose(helpers.make_snap(versions, python="3.11.7"), matrix)}
    assert found["cudnn8-with-cudnn9-jaxlib"].severity is Severity.ERROR
    assert "nvidia-wheels-cpu-jaxlib" not in found


# -- fixes that must never do harm -------------------------------------------------------------------------------
def _fix_of(versions: dict, rule_id: str, matrix: Matrix, python: str = "3.11.7") -> tuple[str, ...]:
    found = {f.id: f for f in diagnose(helpers.make_snap(versions, python=python), matrix)}
    assert rule_id in found, f"{rule_id} did not fire; got {sorted(found)}"
    return found[rule_id].fix.commands  # type: ignore[union-attr]


@pytest.mark.parametrize(("versions", "capped"), [
    pytest.param({"tensorstore": "0.1.80", "ml-dtypes": "0.4.1", "jax": "0.4.25", "jaxlib": "0.4.25"}, True,
                 id="jaxlib-0.4.25-needs-numpy-1"),
    pytest.param({"tensorstore": "0.1.80", "ml-dtypes": "0.4.1", "jax": "0.4.30", "jaxlib": "0.4.30"}, False,
                 id="jaxlib-0.4.30-takes-numpy-2"),
])
def test_ml_dtypes_upgrade_keeps_numpy_1_where_needed(matrix: Matrix, versions: dict, capped: bool) -> None:
    """ml-dtypes 0.6.0 requires numpy >= 2.0 (its wheel metadata): a bare `ml-dtypes>=0.5.0` breaks NumPy-1 stacks."""
    cmds = _fix_of(versions, "tensorstore-ml-dtypes-float8", matrix)
    assert all("ml-dtypes>=0.5.0" in c for c in cmds)
    assert all(("numpy<2" in c) == capped for c in cmds), cmds


@pytest.mark.parametrize(("tf", "mld", "want"), [
    pytest.param("2.15.1", "0.5.3", '"ml-dtypes~=0.3.1"', id="tf-2.15.1"),
    pytest.param("2.15.0", "0.3.2", '"ml-dtypes~=0.2.0"', id="tf-2.15.0"),
    pytest.param("2.17.1", "0.5.1", '"ml-dtypes<0.5.0,>=0.3.1"', id="tf-2.17"),
    pytest.param("2.18.0", "0.3.2", '"ml-dtypes<0.5.0,>=0.4.0"', id="tf-2.18.0"),
    pytest.param("2.19.0", "0.4.1", '"ml-dtypes<1.0.0,>=0.5.1"', id="tf-2.19"),
])
def test_ml_dtypes_judged_against_each_tensorflow_release(matrix: Matrix, tf: str, mld: str, want: str) -> None:
    cmds = _fix_of({"tensorflow-cpu": tf, "ml-dtypes": mld}, "tensorflow-ml-dtypes", matrix)
    assert any(want in c for c in cmds), cmds


def test_tensorflow_ml_dtypes_quiet_inside_its_range(matrix: Matrix) -> None:
    for tf, mld in (("2.18.1", "0.5.1"), ("2.17.1", "0.4.1"), ("2.15.1", "0.3.2"), ("2.21.0", "0.6.0")):
        found = diagnose(helpers.make_snap({"tensorflow-cpu": tf, "ml-dtypes": mld}), matrix)
        assert "tensorflow-ml-dtypes" not in ids(found), (tf, mld)


@pytest.mark.parametrize(("tf", "pb", "want"), [
    pytest.param("2.16.1", "5.28.0", '"protobuf<5.0.0dev,>=3.20.3"', id="tf-2.16-protobuf-5"),
    pytest.param("2.19.0", "6.31.1", '"protobuf<6.0.0dev,>=3.20.3"', id="tf-2.19-protobuf-6"),
    pytest.param("2.20.0", "3.20.3", '"protobuf>=5.28.0"', id="tf-2.20-protobuf-3.20"),
    pytest.param("2.21.0", "5.29.1", '"protobuf<8.0.0,>=6.31.1"', id="tf-2.21-protobuf-5"),
])
def test_protobuf_advice_follows_each_tensorflow_release(matrix: Matrix, tf: str, pb: str, want: str) -> None:
    cmds = _fix_of({"tensorflow": tf, "protobuf": pb}, "tensorflow-protobuf", matrix)
    assert cmds == (f"python -m pip install {want}",)


def test_protobuf_inside_tensorflows_range_is_quiet(matrix: Matrix) -> None:
    for tf, pb in (("2.18.0", "5.29.1"), ("2.20.0", "5.28.0"), ("2.15.1", "3.20.3"), ("2.21.0", "6.31.1")):
        assert "tensorflow-protobuf" not in ids(diagnose(helpers.make_snap({"tensorflow": tf, "protobuf": pb}), matrix))


def _probe_fix(versions: dict, error: str, matrix: Matrix) -> tuple[str, ...]:
    snap = helpers.make_snap(versions, probes=(ProbeResult("jax", "failed", 1.0, error=error),))
    f = next(x for x in diagnose(snap, matrix) if x.id == "runtime-probe-failed")
    return f.fix.commands  # type: ignore[union-attr]


DNN = "jaxlib.xla_extension.XlaRuntimeError: FAILED_PRECONDITION: DNN library initialization failed."


@pytest.mark.parametrize(("versions", "want"), [
    pytest.param({"jax": "0.4.19", "jaxlib": "0.4.19+cuda12.cudnn89"}, '"nvidia-cudnn-cu12>=8.9,<9"',
                 id="cudnn89-jaxlib"),
    pytest.param({"jax": "0.4.13", "jaxlib": "0.4.13+cuda11.cudnn86"}, '"nvidia-cudnn-cu11>=8.6,<9"',
                 id="cuda11-jaxlib"),
    pytest.param({"jax": "0.5.3", "jaxlib": "0.5.3", "jax-cuda12-plugin": "0.5.3", "jax-cuda12-pjrt": "0.5.3"},
                 '"nvidia-cudnn-cu12>=9.1,<10"', id="jax-0.5.3"),
    pytest.param({"jax": "0.6.2", "jaxlib": "0.6.2", "jax-cuda12-plugin": "0.6.2", "jax-cuda12-pjrt": "0.6.2"},
                 '"nvidia-cudnn-cu12>=9.8,<10"', id="jax-0.6.2"),
    pytest.param({"jax": "0.10.2", "jaxlib": "0.10.2", "jax-cuda13-plugin": "0.10.2", "jax-cuda13-pjrt": "0.10.2"},
                 '"nvidia-cudnn-cu13>=9.12,<10"', id="cuda13"),
])
def test_cudnn_advice_matches_the_installed_jaxlib(matrix: Matrix, versions: dict, want: str) -> None:
    cmds = _probe_fix(versions, DNN, matrix)
    assert cmds == (f"python -m pip install {want}",), cmds


def test_the_log_only_cudnn_advice_names_each_era(matrix: Matrix) -> None:
    """Without an environment (`--log`) the cuDNN commands say which jaxlib each is for: never 9.8 unqualified."""
    sig = next(s for s in matrix.signatures if s.id == "sig-cudnn-runtime-older-than-compiled")
    assert any("8.9.4,<9" in c and "jaxlib <= 0.4.28" in c for c in sig.commands)
    assert all("#" in c for c in sig.commands if "nvidia-cudnn" in c)


def test_protobuf_3_20_is_never_advised_next_to_tensorflow_2_20(matrix: Matrix) -> None:
    err = "TypeError: Descriptors cannot be created directly.\nIf this call came from a _pb2.py file"
    cmds = _probe_fix({"tensorflow": "2.20.0", "protobuf": "6.31.1"}, err, matrix)
    assert cmds and not any("3.20" in c for c in cmds), cmds
    assert any('"protobuf>=5.28.0"' in c for c in cmds)


@pytest.mark.parametrize(("versions", "capped"), [
    pytest.param({"jax": "0.4.25", "jaxlib": "0.4.25", "ml-dtypes": "0.3.2"}, True, id="jaxlib-0.4.25"),
    pytest.param({"jax": "0.10.2", "jaxlib": "0.10.2", "ml-dtypes": "0.4.1"}, False, id="numpy-2-stack"),
])
def test_probe_ml_dtypes_advice_carries_the_numpy_cap(matrix: Matrix, versions: dict, capped: bool) -> None:
    cmds = _probe_fix(versions, "AttributeError: module 'ml_dtypes' has no attribute 'float8_e3m4'", matrix)
    assert cmds and all(("numpy<2" in c) == capped for c in cmds), cmds


def test_no_ml_dtypes_upgrade_against_tensorflows_own_pin(matrix: Matrix) -> None:
    """TF 2.15.1 declares ml-dtypes ~=0.3.1: upgrading ml-dtypes would break it, so tensorstore is held back."""
    cmds = _probe_fix({"tensorflow-cpu": "2.15.1", "ml-dtypes": "0.3.2", "tensorstore": "0.1.80"},
                      "AttributeError: module 'ml_dtypes' has no attribute 'float8_e3m4'", matrix)
    assert cmds and not any("ml-dtypes>=" in c.partition("#")[0] for c in cmds), cmds
    assert any('"tensorstore<0.1.75"' in c for c in cmds), cmds


def test_jax_0_4_14_runs_on_jaxlib_0_4_13(matrix: Matrix) -> None:
    """jax 0.4.14's _minimum_jaxlib_version is 0.4.11: the smallest fix for TFP 0.22.1 keeps the guide's jaxlib."""
    found = diagnose(helpers.make_snap({"jax": "0.4.14", "jaxlib": "0.4.13+cuda12.cudnn89",
                                        "tensorflow-probability": "0.22.1"}), matrix)
    assert not {"jax-jaxlib-lockstep", "tfp-jax-substrate-old-jax"} & ids(found)


# -- CUDA 11 -----------------------------------------------------------------------------------------------------
def test_cuda11_jaxlib_is_judged_as_cuda_11(matrix: Matrix) -> None:
    from bdv2.doctor.probe.facts import SystemFacts

    def drv(version: str) -> SystemFacts:
        return SystemFacts.from_dict({"driver": {"version": version, "cuda": "11.4",
                                                 "gpus": [{"name": "Tesla V100", "compute_cap": "7.0"}]}})

    cu11 = {"jax": "0.4.13", "jaxlib": "0.4.13+cuda11.cudnn86", "nvidia-cudnn-cu11": "8.9.6.50"}
    ok = [f for f in diagnose(helpers.make_snap(cu11, system=drv("470.82.01")), matrix) if f.id == "nvidia-driver"]
    assert not [f for f in ok if f.severity is Severity.ERROR], [f.title for f in ok]
    old = [f for f in diagnose(helpers.make_snap(cu11, system=drv("440.33.01")), matrix) if f.id == "nvidia-driver"]
    assert any("too old for CUDA 11 (needs >= 450.80" in f.title for f in old), [f.title for f in old]


def test_rows_that_need_a_find_links_page_print_it(matrix: Matrix) -> None:
    from bdv2.doctor.matrix.verify import constraints

    link = "https://storage.googleapis.com/jax-releases/jax_cuda_releases.html"
    row = matrix.row("seed-era-cuda12")
    assert row.find_links == (link,) and f"--find-links {link}\n" in constraints(row)
    # Every wheel of jax 0.4.19's cuda12_pip extra (its wheel metadata), cuDNN held to 8.9.
    assert {"nvidia-cufft-cu12", "nvidia-nccl-cu12", "nvidia-cuda-cupti-cu12", "nvidia-nvjitlink-cu12"} <= set(
        row.own_packages)
    assert str(row.packages["nvidia-cudnn-cu12"]) == "<9,>=8.9.4"
    snap = helpers.make_snap({"jax": "0.4.13", "jaxlib": "0.4.13+cuda11.cudnn86", "tensorflow": "2.14.0",
                              "tensorflow-probability": "0.21.0"}, python="3.10.12")
    near = next(f for f in diagnose(snap, matrix) if f.id == "nearest-row")
    assert "bdv2-original-cuda11" in near.title
    assert any(c.endswith(f"--find-links={link}") for c in near.fix.commands)  # type: ignore[union-attr]


# -- every text renders --------------------------------------------------------------------------------------------
_PLACEHOLDER = __import__("re").compile(r"\{[a-z0-9_.@-]+\}")


def test_no_placeholder_survives_in_any_rule_or_signature_text(matrix: Matrix) -> None:
    """Every data rule fired on its own conditions renders its title, evidence and fix with no `{name}` left; the
    texts of built-in checks and signatures are never formatted, so they hold none at all."""
    texts: list[tuple[str, str]] = []
    for rule in matrix.rules:
        if rule.check and rule.check != "ml_dtypes_upgrade":
            texts += [(rule.id, t) for t in (rule.title, rule.reason, rule.fix, *rule.commands)]
            continue
        versions, python = _firing_versions(rule, matrix)
        for f in diagnose(helpers.make_snap(versions, python=python), matrix):
            if f.id == rule.id:
                texts += [(rule.id, t) for t in (f.title, *f.evidence, f.fix.summary, *f.fix.commands)]  # type: ignore[union-attr]
    for sig in matrix.signatures:
        texts += [(sig.id, t) for t in (sig.cause, sig.fix, *sig.commands)]
    left = [(i, t) for i, t in texts if _PLACEHOLDER.search(t)]
    assert not left, left


def test_an_ml_dtypes_that_breaks_import_tensorflow_is_an_error(matrix: Matrix) -> None:
    """TF 2.14 registers ml_dtypes.float8_e4m3b11 at import; ml-dtypes 0.3.0 removed it: the env cannot import TF."""
    found = diagnose(helpers.make_snap({"tensorflow": "2.14.0", "ml-dtypes": "0.3.2", "numpy": "1.26.4"}), matrix)
    assert "tensorflow-ml-dtypes-e4m3b11" in errors(found)
    quiet = diagnose(helpers.make_snap({"tensorflow": "2.14.0", "ml-dtypes": "0.2.0", "numpy": "1.26.4"}), matrix)
    assert "tensorflow-ml-dtypes-e4m3b11" not in ids(quiet)
    assert "tensorflow-ml-dtypes-e4m3b11" not in ids(
        diagnose(helpers.make_snap({"tensorflow-cpu": "2.15.1", "ml-dtypes": "0.3.2"}), matrix))


def test_a_warning_about_the_same_pair_never_hides_a_requires_dist_error() -> None:
    """flax 0.12.8 beside jax 0.6.2 (tests/doctor/broken_envs.py, flax-newer-than-jax): the static API check's
    warnings name flax's jax calls; the unmet Requires-Dist stays the error that makes the doctor exit 1."""
    from bdv2.doctor.diagnose import _merge
    from bdv2.doctor.findings import Area, Finding

    error = Finding("requires-dist", Severity.ERROR, Area.PACKAGES, "flax 0.12.8 requires jax>=0.10.0",
                    packages=("flax", "jax"))
    warning = Finding("jax-api-stale-use", Severity.WARNING, Area.RUNTIME, "flax 0.12.8 uses jax.P",
                      packages=("flax", "jax"))
    assert _merge([error, warning]) == [error, warning]
    specific = Finding("flax-needs-newer-jax", Severity.WARNING, Area.PACKAGES, "flax needs jax >= 0.10",
                       packages=("flax", "jax"))
    assert _merge([error, specific]) == [specific], "a package rule's verdict on the same pair still replaces it"
