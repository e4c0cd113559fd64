"""The `bdv2 doctor` command end to end: exit codes, --json schema, --markdown, --snapshot, --log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from bdv2.cli import main
from bdv2.doctor.probe.snapshot import Snapshot

from . import helpers

ROOT = Path(__file__).resolve().parents[2]
SNAPS = ROOT / "tests" / "data" / "snapshots"
SCHEMA = json.loads((ROOT / "doctor" / "report_schema.json").read_text())


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.output


def save(tmp_path: Path, snap: Snapshot, name: str = "s.json") -> str:
    path = tmp_path / name
    snap.save(path)
    return str(path)


def test_importing_the_cli_imports_no_jax_and_no_tensorflow() -> None:
    code = ("import sys, bdv2.cli; heavy = [m for m in ('jax', 'jaxlib', 'tensorflow', 'numpy', 'flax') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _doctor_modules_after(*argv: str, env: dict[str, str] | None = None, prefix: str = "bdv2.doctor") -> set[str]:
    """The modules (named ``prefix``...) a real `bdv2 doctor ARGV` run has imported when it exits (in a fresh
    process)."""
    code = ("import sys; from bdv2.cli import main; sys.argv = ['bdv2', 'doctor', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(*sorted(m for m in sys.modules if m.startswith({prefix!r})), file=sys.stderr)")
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False,
                         env=env)
    return set(res.stderr.split())


# The wings a plain check never runs: the repair flow, the log readers, the runtime probes and the source scan.
NOT_ON_THE_PLAIN_PATH = {"bdv2.doctor.repair.flow", "bdv2.doctor.repair.apply", "bdv2.doctor.repair.pipmove",
                         "bdv2.doctor.repair.plan", "bdv2.doctor.repair.installer", "bdv2.doctor.logs",
                         "bdv2.doctor.logs.signatures", "bdv2.doctor.logs.tracebacks", "bdv2.doctor.logs.resolver",
                         "bdv2.doctor.logs.loader", "bdv2.doctor.probe.deep", "bdv2.doctor.api.deep",
                         "bdv2.doctor.api.scan", "bdv2.doctor.matrix.verify", "bdv2.doctor.matrix.cli",
                         # nor the other formats' renderers, the repair types or the repair report
                         "bdv2.doctor.report.json", "bdv2.doctor.report.markdown", "bdv2.doctor.report.repair",
                         "bdv2.doctor.repair.model"}


def test_a_plain_doctor_run_loads_no_repair_flow_log_reader_or_runtime_probe(tmp_path: Path) -> None:
    plain = _doctor_modules_after()
    assert "bdv2.doctor.checks.rules" in plain and "bdv2.doctor.report.text" in plain  # it did run the check
    assert not plain & NOT_ON_THE_PLAIN_PATH, sorted(plain & NOT_ON_THE_PLAIN_PATH)
    # ... and each mode still loads its own wing when it runs.
    log = tmp_path / "train.log"
    log.write_text("ImportError: numpy.core.multiarray failed to import\n")
    assert "bdv2.doctor.logs.signatures" in _doctor_modules_after("--log", str(log))
    assert "bdv2.doctor.repair.flow" in _doctor_modules_after("--fix", "--print-env")


def test_json_loads_no_rich_and_a_second_plain_run_reads_no_toml_and_no_api_history(tmp_path: Path) -> None:
    as_json = _doctor_modules_after("--json", prefix="")
    assert "bdv2.doctor.report.json" in as_json and "bdv2.doctor.checks.rules" in as_json
    assert not {m for m in as_json if m == "rich" or m.startswith("rich.")}, "--json needs no rich"
    assert "bdv2.doctor.report.text" not in as_json
    # The matrix's TOML and the API history's answers for these releases are kept in the cache between runs
    # (keyed on the files' bytes): the first run reads both, the second neither, and says the same.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = _doctor_modules_after(env=env, prefix="")
    second = _doctor_modules_after(env=env, prefix="")
    assert "tomllib" in first and "tomllib" not in second and "gzip" not in second
    assert "bdv2.doctor.api.history" in second  # asked, through the cache
    assert (tmp_path / "cache" / "bdv2" / "doctor" / "matrix.marshal").is_file()
    reports = [json.loads(subprocess.run([sys.executable, "-m", "bdv2.cli", "doctor", "--json"], env=e,
                                         capture_output=True, text=True, check=False).stdout)
               for e in (env, {**env, "XDG_CACHE_HOME": str(tmp_path / "empty")})]
    assert reports[0]["findings"] == reports[1]["findings"] and reports[0]["exit_code"] == reports[1]["exit_code"]


def test_healthy_snapshot_exits_0_and_json_validates(tmp_path: Path) -> None:
    path = save(tmp_path, helpers.make_snap({"jax": "0.10.2", "jaxlib": "0.10.2", "flax": "0.12.8"}))
    code, out = run("doctor", "--snapshot", path, "--json")
    assert code == 0
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["exit_code"] == 0 and doc["summary"]["errors"] == 0


def test_broken_snapshot_exits_1_with_fix_in_json(tmp_path: Path) -> None:
    path = save(tmp_path, helpers.make_snap({"tensorflow-cpu": "2.15.1", "tensorflow-probability": "0.25.0"}))
    code, out = run("doctor", "--snapshot", path, "--json")
    assert code == 1
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    f = next(f for f in doc["findings"] if f["id"] == "tfp-too-new-for-tf")
    assert f["severity"] == "error" and f["fix"]["commands"] and f["source"].startswith("https://")


def test_text_report_groups_by_area_and_shows_fix(tmp_path: Path) -> None:
    path = save(tmp_path, helpers.make_snap({"jax": "0.4.13", "jaxlib": "0.4.13", "scipy": "1.13.1"}))
    code, out = run("doctor", "--snapshot", path)
    assert code == 1
    assert "Python packages" in out and "Environment variables" in out
    assert "✗" in out and "scipy<1.13" in out
    code, out_v = run("doctor", "--snapshot", path, "-v")
    assert "why:" in out_v and "source:" in out_v


def test_warning_fails_only_under_strict(tmp_path: Path) -> None:
    path = save(tmp_path, helpers.make_snap({"distrax": "0.1.6"}))
    assert run("doctor", "--snapshot", path)[0] == 0
    assert run("doctor", "--snapshot", path, "--strict")[0] == 1


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    path = save(tmp_path, helpers.make_snap({}))
    assert run("doctor", "--snapshot", path, "--json", "--markdown")[0] == 2
    assert run("doctor", "--snapshot", path, "--deep")[0] == 2
    assert run("doctor", "--no-such-flag")[0] == 2


def test_unreadable_snapshot_is_one_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "env.json"
    bad.write_text("{not json")
    code, out = run("doctor", "--snapshot", str(bad))
    assert code == 3 and "env.json is not JSON" in out and "Traceback" not in out
    bad.write_text('{"python": {}}')
    code, out = run("doctor", "--snapshot", str(bad))
    assert code == 3 and "not a bdv2 snapshot" in out


def test_exit_code_3_when_there_is_no_such_interpreter(tmp_path: Path) -> None:
    code, out = run("doctor", "--python", str(tmp_path / "nope" / "python"))
    assert code == 3 and "cannot examine" in out and "no such interpreter" in out and "Traceback" not in out
    assert run("doctor", "--snapshot", str(tmp_path / "missing.json"))[0] == 3


def test_exit_code_3_when_the_metadata_probe_fails(tmp_path: Path) -> None:
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\necho 'probe broke' >&2\nexit 7\n")
    script.chmod(0o755)
    code, out = run("doctor", "--python", str(script))
    assert code == 3 and "metadata probe failed (exit 7)" in out and "probe broke" in out


def test_exit_code_3_when_the_metadata_probe_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    collect_module = importlib.import_module("bdv2.doctor.probe.collect")

    def hangs(cmd: list[str], **kw: object) -> None:
        raise subprocess.TimeoutExpired(cmd, float(kw.get("timeout", 60)))  # type: ignore[arg-type]

    monkeypatch.setattr(collect_module.subprocess, "run", hangs)
    code, out = run("doctor", "--python", sys.executable)
    assert code == 3 and "the metadata probe did not finish in 60s" in out, out


def test_exit_codes_are_in_the_help_epilog() -> None:
    code, out = run("doctor", "--help")
    assert code == 0 and "3 could not examine at all" in out and "2 usage error" in out


def test_markdown_redacts_secrets(tmp_path: Path) -> None:
    env = {"TF_API_TOKEN": "hunter2", "XLA_FLAGS": "--xla_gpu_force_compilation_parallelism=1"}
    path = save(tmp_path, helpers.make_snap({"jax": "0.10.2", "jaxlib": "0.9.2"}, {"jax": ["jaxlib>=0.10.1"]}, env=env))
    code, out = run("doctor", "--snapshot", path, "--markdown")
    assert code == 1
    assert "hunter2" not in out and "TF_API_TOKEN=<redacted>" in out
    assert "XLA_FLAGS=--xla_gpu_force_compilation_parallelism=1" in out
    assert "## bdv2 doctor report" in out and "`jax-jaxlib-lockstep`" in out


def test_save_then_replay_gives_the_same_findings(tmp_path: Path) -> None:
    out1 = tmp_path / "live.json"
    code, _ = run("doctor", "--save-snapshot", str(out1), "--json")
    snap = Snapshot.load(out1)
    assert snap.python["executable"] == sys.executable
    assert Snapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap
    code2, out2 = run("doctor", "--snapshot", str(out1), "--json")
    assert code2 == code
    assert [f["id"] for f in json.loads(out2)["findings"]] == [
        f["id"] for f in json.loads(run("doctor", "--json")[1])["findings"]]


SEED_LOG_LINES = [
    ("ImportError: initialization failed\nAttributeError: module 'ml_dtypes' has no attribute 'float8_e3m4'",
     "sig-tensorstore-float8-e3m4"),
    ("ValueError: Arg specs do not match: original=FullArgSpec(args=['input', 'dtype', 'name', 'layout'], "
     "varargs=None, varkw=None, defaults=(None, None, None), kwonlyargs=[], kwonlydefaults=None, annotations={}), "
     "new=FullArgSpec(args=['input', 'dtype', 'name'], varargs=None, varkw=None, defaults=(None, None), "
     "kwonlyargs=[], kwonlydefaults=None, annotations={}), fn=<function ones_like_v2 at 0x7f8287141480>",
     "sig-tfp-arg-specs"),
    ("2024-03-01 12:00:01.123: E external/xla/xla/stream_executor/cuda/cuda_dnn.cc:535] Could not create cudnn "
     "handle: CUDNN_STATUS_NOT_INITIALIZED\njaxlib.xla_extension.XlaRuntimeError: FAILED_PRECONDITION: DNN library "
     "initialization failed. Look at the errors above for more details.", "sig-dnn-library-init"),
    ("The CUDA linking API did not work. Please use XLA_FLAGS=--xla_gpu_force_compilation_parallelism=1 to bypass "
     "it, but expect to get longer compilation time due to the lack of multi-threading. Original error: INTERNAL: "
     "nvlink exited with non-zero error code 256, output: nvlink fatal   : Input file "
     "'/tmp/tempfile-host-1-ab12-999-5f7a.cubin' newer than toolkit (129 vs 124)", "sig-nvlink-newer-than-toolkit"),
    ("TypeError: Cannot concatenate arrays with different numbers of dimensions: got (256, 512), (256, 1, 7).",
     "sig-proprio-concat"),
]


@pytest.mark.parametrize(("text", "sig_id"), SEED_LOG_LINES, ids=[s for _, s in SEED_LOG_LINES])
def test_log_names_the_seed_failures(tmp_path: Path, text: str, sig_id: str) -> None:
    log = tmp_path / "train.log"
    noise = ("E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register factory for "
             "plugin cuDNN when one has already been registered\n")
    log.write_text(noise + text + "\n")
    code, out = run("doctor", "--log", str(log), "--json")
    assert code == 1
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    errs = [f["id"] for f in doc["findings"] if f["severity"] == "error"]
    assert errs[0] == sig_id, errs
    noise_ids = [f["id"] for f in doc["findings"] if f["severity"] == "info"]
    assert "sig-noise-factory-registered" in noise_ids


def test_log_from_stdin_with_no_known_cause_says_so() -> None:
    res = CliRunner().invoke(main, ["doctor", "--log", "-"], input="Segmentation fault (core dumped)\nall done\n")
    assert res.exit_code == 0
    assert "no known cause" in res.output and "Segmentation fault" in res.output


def test_recorded_cu12_and_cu13_wheel_sets_are_healthy() -> None:
    for name in ("gpu-cu12-wheels.json", "gpu-cu13-wheels.json"):
        code, out = run("doctor", "--snapshot", str(SNAPS / name), "--json")
        doc = json.loads(out)
        assert code == 0, [f["title"] for f in doc["findings"]]


def test_recorded_plugin_skew_is_named() -> None:
    code, out = run("doctor", "--snapshot", str(SNAPS / "gpu-cu12-plugin-skew.json"), "--json")
    assert code == 1
    found = {f["id"]: f for f in json.loads(out)["findings"]}
    skew = found["jax-plugin-lockstep"]
    assert "0.9.2" in skew["title"]
    assert any('"jax-cuda12-plugin==0.10.2" "jax-cuda12-pjrt==0.10.2"' in c for c in skew["fix"]["commands"])


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.mark.skipif(not _installed("jax"), reason="needs the [train] environment (README's commands make it)")
def test_the_train_environment_itself_is_healthy() -> None:
    res = subprocess.run([sys.executable, "-m", "bdv2.cli", "doctor", "--json"], capture_output=True, text=True,
                         timeout=120)
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert res.returncode == 0 and doc["summary"]["errors"] == 0, [f["title"] for f in doc["findings"]]


@pytest.mark.slow
@pytest.mark.skipif(not _installed("jax"), reason="needs the [train] environment (README's commands make it)")
def test_the_train_environment_passes_the_runtime_probes() -> None:
    res = subprocess.run([sys.executable, "-m", "bdv2.cli", "doctor", "--deep", "--json"], capture_output=True,
                         text=True, timeout=600)
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert res.returncode == 0, [f["title"] for f in doc["findings"]]
    status = {p["name"]: p["status"] for p in doc["probes"]}
    assert status["jax"] == status["flax-optax"] == status["distrax"] == status["tensorflow"] == "ok", status


@pytest.mark.parametrize(("flags", "mode"), [
    ({}, "CHECK"), ({"snapshot": True}, "SNAPSHOT"), ({"log": True}, "LOG"), ({"fix": True}, "FIX"),
    ({"dry_run": True}, "FIX_DRY_RUN"), ({"fix": True, "dry_run": True, "as_json": True}, "FIX_DRY_RUN"),
    ({"print_env": True}, "PRINT_ENV"), ({"print_env": True, "dry_run": True}, "PRINT_ENV"), ({"undo": True}, "UNDO"),
    ({"undo": True, "as_json": True}, "UNDO"),
])
def test_each_option_set_selects_one_mode(flags: dict[str, bool], mode: str) -> None:
    from bdv2.doctor.cli import Flags, Mode, choose_mode

    assert choose_mode(Flags(**flags)) is Mode[mode]


@pytest.mark.parametrize(("flags", "message"), [
    ({"as_json": True, "markdown": True}, "choose one of --json and --markdown"),
    ({"fix": True, "snapshot": True}, "--fix and --undo work on a live environment: not with --snapshot or --log"),
    ({"undo": True, "log": True}, "--fix and --undo work on a live environment: not with --snapshot or --log"),
    ({"fix": True, "undo": True}, "choose one of --fix and --undo"),
    ({"fix": True, "markdown": True}, "--fix shows its plan to people; for a machine-readable plan use "
                                      "--fix --dry-run --json"),
    ({"fix": True, "as_json": True}, "--fix shows its plan to people"),
    ({"snapshot": True, "python": True}, "--snapshot replays a saved environment: it cannot be combined with "
                                         "--python or --deep"),
])
def test_option_sets_that_make_no_sense_are_usage_errors(flags: dict[str, bool], message: str) -> None:
    import click

    from bdv2.doctor.cli import Flags, choose_mode

    with pytest.raises(click.UsageError) as e:
        choose_mode(Flags(**flags))
    assert message in e.value.message


def test_batch_size_is_an_option_of_the_run_and_never_saved_in_the_snapshot(tmp_path: Path) -> None:
    path = save(tmp_path, helpers.make_snap({"jax": "0.10.2", "jaxlib": "0.10.2"},
                                            env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4",
                                                 "JAX_PLATFORMS": "cpu"}))
    out = tmp_path / "again.json"
    code, text = run("doctor", "--snapshot", path, "--batch-size", "6", "--save-snapshot", str(out), "--json")
    assert code == 1 and any(f["id"] == "batch-indivisible" for f in json.loads(text)["findings"])
    assert "batch_size" not in json.loads(out.read_text())["system"]
    code, text = run("doctor", "--snapshot", str(out), "--json")  # the replay does not re-check a batch
    assert code == 0 and not any(f["id"] == "batch-indivisible" for f in json.loads(text)["findings"])


def test_the_cli_docstring_counts_the_doctor_options_it_has() -> None:
    import re

    from bdv2.doctor import cli

    said = re.search(r"The doctor's (\d+) options", cli.__doc__ or "")
    assert said is not None and int(said.group(1)) == len(cli.doctor.params)
