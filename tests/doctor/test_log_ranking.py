"""diagnose_log's ranking: the most specific cause first, harmless lines never above a cause, and the structural
corpus (tests/data/log_corpus/structural/: `<expected finding id>__<what>.log`, `none__` for no known cause).

Each corpus log's first line names where it comes from: `# source: <public thread URL>`, or `# source: measured:
<what was installed and run>` for a failure reproduced in a throwaway environment. That line is the corpus's
record, not part of the log: it is removed before the log is read. tests/data/log_corpus/heldout/ is a held-out
set, drawn at random (a third of each expected id) before the parsers were generalised on the rest; its score has
a floor."""

from __future__ import annotations

from pathlib import Path

import pytest

from bdv2.doctor.findings import Finding, Severity
from bdv2.doctor.logs.signatures import diagnose_log
from bdv2.doctor.matrix import Matrix

ROOT = Path(__file__).parent.parent / "data" / "log_corpus"
STRUCTURAL = sorted((ROOT / "structural").glob("*.log"))
ALL = sorted(ROOT.glob("*.log")) + STRUCTURAL
HELDOUT = sorted((ROOT / "heldout").glob("*.log"))
# right first finding / held-out logs: 25/33 when the set was put aside, 29/33 after generalising on the
# development set alone, 31/33 once three general bugs that its misses showed were fixed (a regex's `{m,n}` read
# as an f-string field, tracebacks pasted without their header, RUNPATH folders written with `..`); the floor sits
# just below the last
HELDOUT_FLOOR = 30

# TensorFlow's and XLA's start-up lines (tests/data/log_corpus and the noise signatures' examples)
NOISE = (
    "2024-03-01 12:00:00.100000: I tensorflow/core/util/port.cc:113] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n"
    "2024-03-01 12:00:00.200000: I tensorflow/core/platform/cpu_feature_guard.cc:210] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.\n"
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "E0000 00:00:1709294400.300000 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register "
    "factory for plugin cuDNN when one has already been registered\n"
)


def _expected(path: Path) -> str:
    head = path.name.split("__")[0]
    return "log-no-known-cause" if head == "none" else head


def _first_cause(findings: list[Finding]) -> Finding:
    return next((f for f in findings if f.severity is not Severity.INFO), findings[-1])


def corpus_text(path: Path) -> str:
    """The log without its `# source:` line."""
    text = path.read_text()
    return text.split("\n", 1)[1] if text.startswith("# source:") else text


def _right(path: Path, matrix: Matrix) -> bool:
    return _first_cause(diagnose_log(corpus_text(path), matrix, path.name)).id == _expected(path)


@pytest.mark.parametrize("path", STRUCTURAL + HELDOUT, ids=[p.stem for p in STRUCTURAL + HELDOUT])
def test_corpus_log_names_its_source(path: Path) -> None:
    first = path.read_text().split("\n", 1)[0]
    assert first.startswith(("# source: https://", "# source: measured: ")), "a public thread, or how it was made"


@pytest.mark.parametrize("path", STRUCTURAL, ids=[p.stem for p in STRUCTURAL])
def test_structural_corpus_log_names_its_cause(matrix: Matrix, path: Path) -> None:
    first = _first_cause(diagnose_log(corpus_text(path), matrix, name=path.name))
    assert first.id == _expected(path), first.title
    assert first.fix is not None and first.fix.summary


def test_corpus_score_is_complete_and_broad(matrix: Matrix) -> None:
    hits = [p.name for p in ALL if _right(p, matrix)]
    assert len(hits) == len(ALL), sorted(set(p.name for p in ALL) - set(hits))
    families = {p.name.split("__")[0] for p in STRUCTURAL}
    assert len(STRUCTURAL) >= 30 and {"log-era-mismatch", "log-resolver-conflict", "log-installed-conflict",
                                      "log-missing-name", "log-no-matching-distribution", "log-cuda-lib-not-found",
                                      "none"} <= families
    assert len(ALL) + len(HELDOUT) >= 150


def test_heldout_score_keeps_its_floor(matrix: Matrix) -> None:
    misses = sorted(p.name for p in HELDOUT if not _right(p, matrix))
    score = len(HELDOUT) - len(misses)
    print(f"held-out: {score}/{len(HELDOUT)} right first findings; missed: {misses}")
    assert len(HELDOUT) >= 25 and score >= HELDOUT_FLOOR, misses


def test_noise_never_ranks_above_a_cause(matrix: Matrix) -> None:
    cause = (ROOT / "structural" / "log-era-mismatch__genjax-recast-to-float0.log").read_text()
    for text in (NOISE + cause, cause + NOISE):
        found = diagnose_log(text, matrix)
        assert found[0].id == "log-era-mismatch"
        ranks = [f.severity is Severity.INFO for f in found]
        assert ranks == sorted(ranks), "every harmless finding comes after every cause"


def test_a_specific_signature_stays_first_and_the_structure_adds_the_caller(matrix: Matrix) -> None:
    # a flax frame in https://github.com/gdsfactory/sax/issues/32's layout; the wording is sig-jax-tree-map-removed's
    text = ('Traceback (most recent call last):\n'
            '  File "/opt/homebrew/lib/python3.11/site-packages/flax/core/scope.py", line 9, in f\n'
            "AttributeError: module 'jax' has no attribute 'tree_map'\n")
    ids = [f.id for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO]
    assert ids == ["sig-jax-tree-map-removed", "log-era-mismatch"]


def test_a_loader_trace_outranks_the_generic_backend_symptom(matrix: Matrix) -> None:
    wheels = "/home/u/.venv/lib/python3.11/site-packages/nvidia"
    text = ("     7:\tfind library=libcudnn.so.9 [0]; searching\n"
            "     7:\t search path=/usr/local/cuda/lib64\t\t(LD_LIBRARY_PATH)\n"
            "     7:\t  trying file=/usr/local/cuda/lib64/libcudnn.so.9\n"
            "     7:\tfind library=libcublas.so.12 [0]; searching\n"
            f"     7:\t  trying file={wheels}/cublas/lib/libcublas.so.12\n"
            "An NVIDIA GPU may be present on this machine, but... CUDA backend failed to initialize: "
            "FAILED_PRECONDITION: DNN library initialization failed.\n")
    ids = [f.id for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO]
    assert ids.index("log-cuda-lib-outside-wheels") < ids.index("sig-cuda-backend-failed")


def test_unknown_cause_shows_the_last_exception_and_few_relevant_lines(matrix: Matrix) -> None:
    text = NOISE + "\n".join(f"step {i}: error rate {i}" for i in range(30)) + (
        "\nTraceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n"
        "FileNotFoundError: Checkpoint at /tmp/does_not_exist_ckpt_dir/123 not found.\n")
    found = diagnose_log(text, matrix)
    last = found[-1]
    assert last.id == "log-no-known-cause" and last.severity is Severity.WARNING
    assert last.evidence[0] == ("last exception: FileNotFoundError: Checkpoint at /tmp/does_not_exist_ckpt_dir/123 "
                                "not found.")
    assert len(last.evidence) <= 8
    assert not any("oneDNN" in e or "cpu_feature_guard" in e or "absl" in e for e in last.evidence)


def test_other_wordings_are_read_as_the_catalogued_message(matrix: Matrix) -> None:
    def first(text: str) -> str:
        return _first_cause(diagnose_log(text, matrix)).id

    # jax before 0.3 wrote the jaxlib check without ">=" (https://github.com/Zuricho/ParallelFold/issues/13)
    assert first("ValueError: jaxlib is version 0.1.69, but this version of jax requires version 0.1.74.") == \
        "sig-jaxlib-too-old"
    # jaxlib's own loader (its bundled XLA says `external/...`) is the cause; TensorFlow's same line is a probe
    # beside another failure, and the cause only when it is the one failure the log shows
    line = ("W {}dso_loader.cc:64] Could not load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: "
            "cannot open shared object file: No such file or directory")
    assert first(line.format("external/org_tensorflow/tensorflow/tsl/platform/default/")) == "sig-cuda-lib-missing-so"
    probe = line.format("tensorflow/compiler/xla/stream_executor/platform/default/")
    other = ('\nTraceback (most recent call last):\n  File "/home/u/train.py", line 3, in <module>\n    x = load()\n'
             "ValueError: the dataset has no split 'train'\n")
    assert first(probe + other) == "log-no-known-cause"
    assert first(probe) == "sig-cuda-lib-missing-so"
    # a missing name in another wording, chained under an unhelpful one (a measured tensorstore/ml-dtypes pair)
    found = diagnose_log(corpus_text(ROOT / "structural" /
                                     "sig-tensorstore-float8-e3m4__local-tensorstore0175-mldtypes020.log"), matrix)
    assert found[0].id == "sig-tensorstore-float8-e3m4"
    assert "cannot import name 'float8_e3m4' from 'ml_dtypes'" in found[0].evidence[0]


def test_the_loader_trace_outranks_its_one_line_symptom(matrix: Matrix) -> None:
    text = corpus_text(ROOT / "structural" / "log-cuda-lib-not-found__local-ld-debug-cudnn9-missing.log")
    ids = [f.id for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO]
    assert ids[:2] == ["log-cuda-lib-not-found", "sig-cuda-lib-missing-so"]
