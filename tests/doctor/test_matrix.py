"""compat_matrix.toml: it loads, bad edits are named precisely, rows are self-consistent, examples match."""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from bdv2.doctor import diagnose, load_matrix
from bdv2.doctor.checks import registered
from bdv2.doctor.errors import MatrixError
from bdv2.doctor.findings import Severity
from bdv2.doctor.logs.signatures import match_text
from bdv2.doctor.matrix import Matrix
from bdv2.doctor.matrix.load import _build
from bdv2.doctor.matrix.verify import row_versions

from . import helpers

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_matrix_has_the_promised_rows_and_kinds(matrix: Matrix) -> None:
    kinds = {r.kind for r in matrix.rows}
    assert {"cpu", "cuda12", "cuda13"} <= kinds
    names = {r.name for r in matrix.rows}
    assert {"cpu-current", "cuda12-current", "cuda13-current", "seed-era-cpu", "seed-era-cuda12"} <= names
    assert matrix.default_row.name == "cpu-current"
    assert all(r.verified in ("here", "ci", "documented") and r.verified_note for r in matrix.rows)
    for entry in (*matrix.rules, *matrix.signatures):
        assert entry.source.startswith(("http", "measured:")), entry.id
    assert len(matrix.signatures) >= 5


def test_packaged_copy_is_the_root_file(matrix: Matrix) -> None:
    assert Path(matrix.path).read_text() == (ROOT / "compat_matrix.toml").read_text()


@pytest.mark.parametrize("row_name", [r.name for r in load_matrix().rows])
def test_every_row_passes_every_rule(matrix: Matrix, row_name: str) -> None:
    row = matrix.row(row_name)
    python = next(v for v in ("3.11.7", "3.10.12", "3.12.3") if row.python.contains(v))
    found = [f for f in diagnose(helpers.make_snap(row_versions(row), python=python), matrix)
             if f.severity is Severity.ERROR]
    assert found == [], [f.title for f in found]


def test_the_seed_pins_as_written_fail(matrix: Matrix) -> None:
    # The guide's versions: jax 0.4.13, TFP 0.22.1, ml-dtypes 0.5.3, TF 2.15 (its troubleshooting section).
    seed = {"jax": "0.4.13", "jaxlib": "0.4.13+cuda12.cudnn89", "tensorflow-probability": "0.22.1",
            "ml-dtypes": "0.5.3", "tensorflow": "2.15.1", "scipy": "1.11.4", "nvidia-cudnn-cu12": "8.9.7.29",
            "nvidia-nvjitlink-cu12": "12.9.86"}
    found = {f.id: f.severity for f in diagnose(helpers.make_snap(seed), matrix)}
    assert found["tfp-jax-substrate-old-jax"] is Severity.ERROR
    assert found["tensorflow-ml-dtypes"] is Severity.WARNING


def test_signature_examples_match_their_own_signature(matrix: Matrix) -> None:
    for sig in matrix.signatures:
        assert sig.examples, f"{sig.id} has no real example"
        for ex in sig.examples:
            assert sig.pattern.search(ex), f"{sig.id} does not match its example {ex[:80]!r}"
            first = next(s for s in match_text(ex, matrix) if s.noise == sig.noise)
            assert first.id == sig.id, f"{sig.id}'s example is claimed first by {first.id}"


BAD = [
    pytest.param('[[rows]]\nname = "x"\n', "rows[0] (name 'x')", "required key is missing", id="row-missing-key"),
    pytest.param('[[rules]]\nid = "r1"\ntitle = "t"\nreason = "r"\nsource = "https://x"\nfix = "f"\n'
                 '[rules.when]\njax = "=>0.4"\n', "rules[0] (id 'r1'), key 'when.jax'", "invalid version specifier",
                 id="bad-specifier"),
    pytest.param('[[rules]]\nid = "r1"\ntitle = "t"\nreason = "r"\nsource = "https://x"\nfix = "f"\nwhne = 1\n',
                 "rules[0] (id 'r1'), key 'whne'", "unknown key", id="typo-key"),
    pytest.param('[[rules]]\nid = "r1"\ntitle = "t"\nreason = "r"\nsource = "https://x"\nfix = "f"\n'
                 'check = "nope"\n', "key 'check'", "unknown built-in check", id="unknown-check"),
    pytest.param('[[rules]]\nid = "r1"\ntitle = "t"\nreason = "r"\nsource = "https://x"\nfix = "f"\n'
                 '[rules.when]\n"@tensorflw" = ""\n', "key 'when'", "unknown group", id="unknown-group"),
    pytest.param('[[signatures]]\nid = "s1"\npattern = "(unclosed"\ncause = "c"\nfix = "f"\nsource = "https://x"\n',
                 "signatures[0] (id 's1'), key 'pattern'", "invalid regular expression", id="bad-regex"),
    pytest.param('[[signatures]]\nid = "s1"\npattern = "x"\nunless = "[oops"\ncause = "c"\nfix = "f"\n'
                 'source = "https://x"\n', "signatures[0] (id 's1'), key 'unless'", "invalid regular expression",
                 id="bad-unless-regex"),
    pytest.param('[[rules]]\nid = "r1"\nseverity = "fatal"\ntitle = "t"\nreason = "r"\nsource = "https://x"\n'
                 'fix = "f"\n[rules.when]\njax = ""\n', "key 'severity'", "must be one of", id="bad-severity"),
    pytest.param('[[rules]]\nid = "r1"\ntitle = "t"\nreason = "r"\nsource = "somewhere"\nfix = "f"\n'
                 '[rules.when]\njax = ""\n', "key 'source'", "must be a URL", id="source-not-url"),
]


@pytest.mark.parametrize(("extra", "where", "what"), BAD)
def test_malformed_matrix_names_entry_and_key(extra: str, where: str, what: str) -> None:
    raw = tomllib.loads((ROOT / "compat_matrix.toml").read_text())
    for kind, entries in tomllib.loads(extra).items():
        raw[kind].insert(0, entries[0])  # the bad entry becomes index 0 of its kind
    with pytest.raises(MatrixError) as err:
        _build(raw, "m.toml", registered())
    msg = str(err.value)
    assert msg.startswith("m.toml: ") and where in msg and what in msg, msg


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text("schema = 1\n[[rows]\n")
    with pytest.raises(MatrixError, match=r"m\.toml: not valid TOML"):
        load_matrix(bad)


def _extras() -> dict[str, list[Requirement]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    raw = cfg["options.extras_require"]
    return {k: [Requirement(x) for x in raw[k].strip().splitlines() if x.strip()] for k in raw}


@pytest.mark.parametrize(("extra", "row_name", "own_only"), [
    ("train", "cpu-current", False), ("cuda12", "cuda12-current", True), ("cuda13", "cuda13-current", True),
])
def test_install_extras_equal_matrix_rows(matrix: Matrix, extra: str, row_name: str, own_only: bool) -> None:
    row = matrix.row(row_name)
    wanted = {n: row.packages[n] for n in (row.own_packages if own_only else row.packages)}
    pinned = {r.name.lower(): r.specifier for r in _extras()[extra] if r.name.lower() in wanted or r.specifier}
    assert set(wanted) <= set(pinned), f"missing from [{extra}]: {set(wanted) - set(pinned)}"
    for name, spec in wanted.items():
        assert pinned[name] == spec, f"[{extra}] pins {name}{pinned[name]} but row {row_name} says {spec}"
    extra_pins = {n for n in pinned if n not in wanted and pinned[n]}
    assert not extra_pins, f"[{extra}] pins packages row {row_name} does not name: {extra_pins}"


def test_data_extra_is_the_converters_part_of_the_default_row(matrix: Matrix) -> None:
    row = matrix.row("cpu-current")
    data = {r.name.lower(): r.specifier for r in _extras()["data"]}
    assert set(data) == {"numpy", "tensorflow-cpu", "pillow"}, "what data_tools/ imports, and no jax"
    for name, spec in data.items():
        assert spec == row.packages[name], f"[data] pins {name}{spec} but row cpu-current says {row.packages[name]}"
    imported = set()
    for path in (ROOT / "data_tools").glob("*.py"):
        imported |= set(re.findall(r"^\s*(?:import|from) (numpy|tensorflow|PIL|jax)\b", path.read_text(), re.M))
    assert imported == {"numpy", "tensorflow", "PIL"}, imported


def test_every_check_in_the_matrix_is_registered_and_every_registered_check_is_used() -> None:


    raw = tomllib.loads((ROOT / "compat_matrix.toml").read_text())
    used = [r["check"] for r in raw["rules"] if "check" in r]
    assert sorted(set(used)) == sorted(registered())
    assert len(used) == len(set(used)), "one rule per built-in check"


def test_an_unregistered_check_name_is_refused() -> None:
    raw = tomllib.loads((ROOT / "compat_matrix.toml").read_text())
    raw["rules"][0]["check"] = "no_such_check"
    with pytest.raises(MatrixError, match="unknown built-in check 'no_such_check'"):
        _build(raw, "m.toml", registered())


def test_knowledge_tables_name_public_sources_and_hold_the_known_thresholds(matrix: Matrix) -> None:
    from packaging.version import Version

    from bdv2.doctor.probe.system import driver_cuda

    k = matrix.knowledge
    assert set(k.sources) == {"driver_cuda", "cuda_driver_floor", "compute_cap_floor", "lookup_eras", "cudnn",
                              "ptxas_pin", "min_jaxlib", "plugin_lockstep", "numpy2", "tensorflow", "cuda_jaxlib",
                              "tfp", "ml_dtypes_movers"}
    assert all(url.startswith("https://") for url in [*k.sources.values(), *k.fact_sources.values()])
    # Facts that once were literals in the rule and repair code.
    assert (str(k.plugins_only_since), str(k.cudnn89_build_before), str(k.numpy2_ml_dtypes)) == (
        "0.4.30", "0.4.23", "0.5.0")
    assert [k.tfp_for(Version(v)) for v in ("2.14.1", "2.15.1", "2.17.0", "2.21.0")] == [
        "0.22.1", "0.23.0", "0.24.0", "0.25.0"]
    assert (str(k.tfp_nightly_distrax), str(k.tfp_nightly_jax)) == ("0.1.7", "0.7")
    assert (str(k.tensorstore_ml_dtypes_05), str(k.orbax_new_tensorstore)) == ("0.1.75", "0.11.40")
    assert [(w.wheel, w.floor) for w in map(k.nvcc_for, (11, 12, 13))] == [
        ("nvidia-cuda-nvcc-cu11", "11.8"), ("nvidia-cuda-nvcc-cu12", "12.6.85"), ("nvidia-cuda-nvcc", "13.0.48")]
    assert k.fact_sources["tensorflow.table[0]"] == "https://pypi.org/project/tensorflow/2.21.0/"
    assert k.cuda_driver_floor == {11: Version("450.80.02"), 12: Version("525.60.13"), 13: Version("580")}
    assert k.compute_cap_floor == {11: (5, 2), 12: (5, 2), 13: (7, 5)}
    # jaxlib's own RPATH: 0.4.19 - 0.5.0; 0.5.1 - 0.6.1 through XLA's CUDA stubs; preloading from 0.6.2.
    assert [(str(v), era) for v, era in k.lookup_eras] == [
        ("0.6.2", "preload"), ("0.5.1", "rpath"), ("0.4.19", "rpath"), ("0", "runpath")]
    assert [(str(n.since), n.major, n.floor) for n in k.cudnn] == [
        ("0.6.0", 9, "9.8"), ("0.4.31", 9, "9.1"), ("0.4.29", 9, "9"), ("0", 8, "8.9")]
    assert k.cudnn_cuda13 == "9.12"
    # jax's _minimum_jaxlib_version per release (jax/version.py at each tag): 0.4.14 still accepts jaxlib 0.4.11.
    assert [str(k.min_jaxlib_for(Version(v))) for v in ("0.4.13", "0.4.14", "0.4.16", "0.4.20", "0.4.21", "0.4.26",
                                                         "0.4.27", "0.4.30")] == [
        "0.4.11", "0.4.11", "0.4.14", "0.4.14", "0.4.19", "0.4.20", "0.4.23", "0.4.27"]
    assert k.plugin_exact_since == Version("0.5.3") and k.numpy2_jaxlib == Version("0.4.26")
    # TensorFlow's own pins (wheel metadata of each release).
    pins = {v: k.tf_pins(Version(v)) for v in ("2.14.0", "2.15.0", "2.15.1", "2.16.2", "2.17.1", "2.18.0", "2.18.1",
                                              "2.19.0", "2.20.0", "2.21.0")}
    assert {v: str(p.ml_dtypes) for v, p in pins.items() if p} == {
        "2.14.0": "==0.2.0", "2.15.0": "~=0.2.0", "2.15.1": "~=0.3.1", "2.16.2": "~=0.3.1", "2.17.1": "<0.5.0,>=0.3.1",
        "2.18.0": "<0.5.0,>=0.4.0", "2.18.1": "<1.0.0,>=0.4.0", "2.19.0": "<1.0.0,>=0.5.1", "2.20.0": "<1.0.0,>=0.5.1",
        "2.21.0": "<1.0.0,>=0.5.1"}
    assert [v for v, p in pins.items() if p and not p.numpy.contains("2.0.0")] == [
        "2.15.0", "2.15.1", "2.16.2", "2.17.1"]
    assert [str(pins[v].protobuf) for v in ("2.17.1", "2.19.0", "2.20.0", "2.21.0")] == [  # type: ignore[union-attr]
        "<5.0.0dev,>=3.20.3", "<6.0.0dev,>=3.20.3", ">=5.28.0", "<8.0.0,>=6.31.1"]
    assert k.ptxas_pin_min == (12, 6)
    assert [driver_cuda(v) for v in ("580.65.06", "570.124.06", "535.104.05", "525.60.13", "450.36", "440.1")] == [
        "13.0", "12.8", "12.2", "12.0", "11.0", ""]
    assert len(k.driver_cuda) == 19


def test_a_knowledge_table_without_a_source_is_refused() -> None:
    raw = tomllib.loads((ROOT / "compat_matrix.toml").read_text())
    del raw["knowledge"]["cudnn"]["source"]
    with pytest.raises(MatrixError, match=r"knowledge\.cudnn: every table needs a source"):
        _build(raw, "m.toml", registered())


def test_a_knowledge_row_is_read_by_name_and_a_misnamed_field_is_refused() -> None:
    raw = tomllib.loads((ROOT / "compat_matrix.toml").read_text())
    raw["knowledge"]["cudnn"]["table"][1] = {"since": "0.4.31", "major": 9, "floor": "9.1"}
    with pytest.raises(MatrixError, match=r"knowledge\.cudnn\.table\[1\]: needs exactly since, cudnn_major, floor"):
        _build(raw, "m.toml", registered())
    raw = tomllib.loads((ROOT / "compat_matrix.toml").read_text())
    raw["knowledge"]["tfp"]["table"][0]["source"] = "a book"
    with pytest.raises(MatrixError, match=r"knowledge\.tfp\.table\[0\]: a source must be an https:// URL"):
        _build(raw, "m.toml", registered())


def test_every_reader_of_tensorflows_distributions_takes_them_from_the_matrix_groups(matrix: Matrix) -> None:
    from bdv2.console import distribution
    from bdv2.doctor.api.history import load as load_history
    from bdv2.doctor.logs.tracebacks import as_seen
    from bdv2.doctor.matrix.groups import alternatives, canonical, members
    from bdv2.doctor.probe import deep
    from bdv2.doctor.repair.pipmove import provided

    tf = matrix.groups["tensorflow"]
    assert members("tensorflow") == tf and members("tfp") == matrix.groups["tfp"]
    assert set(alternatives("tensorflow")) == set(tf) - {"tensorflow"} and canonical("tf-nightly") == "tensorflow"
    assert next(p for p in deep.PROBES if p.name == "tensorflow").needs == tf  # the TF probe runs for any of them
    assert all(provided("tensorflow", {name: ("2.21.0", ())}) for name in tf)
    assert as_seen("tensorflow", "Successfully installed tensorflow-intel-2.15.0") == "tensorflow-intel"
    assert distribution("tensorflow") in tf
    # The API history covers the group's first member, which the advice looks up for any member.
    history = load_history()
    assert history is not None and canonical("tfp-nightly") in history.packages
