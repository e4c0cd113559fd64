"""The first fresh batch of real error logs (tests/data/log_fresh/2026-12-06/), scored as bench/log_fresh_score.py
scores it: a log is right when one of the ids its `# accept:` header names is among the first two findings above
info (for `none`: no cause above info but `log-no-known-cause`). The batch was gathered from public threads before
the log families were built; its misses then taught the families general mechanisms (readers for exceptions quoted
in prose, the CUDA release a soname belongs to, a driver older than the toolkit), so it is development material
now and its score has a floor. The next batch stays unseen: only the bench script reads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bdv2.doctor.findings import Severity
from bdv2.doctor.logs.signatures import diagnose_log
from bdv2.doctor.matrix import Matrix

BATCH = Path(__file__).parent.parent / "data" / "log_fresh" / "2026-12-06"
HEADER = re.compile(r"^# (source|cause|accept):\s?(.*)$")
NO_CAUSE = "log-no-known-cause"
# right / 79: 38 before the families, 57 after them, 78 once the misses' mechanisms were generalised (the one left:
# TensorFlow's lone start-up probe for libcudart, which alone is harmless on a machine without a GPU)
FLOOR = 78


def _case(path: Path) -> tuple[list[str], str]:
    accept: list[str] = []
    body: list[str] = []
    for line in path.read_text().splitlines(keepends=True):
        m = HEADER.match(line) if not body else None
        if m:
            accept = m[2].split() if m[1] == "accept" else accept
        else:
            body.append(line)
    return accept, "".join(body)


def _right(path: Path, matrix: Matrix) -> bool:
    accept, body = _case(path)
    top = [f.id for f in diagnose_log(body, matrix, name=path.name) if f.severity is not Severity.INFO][:2]
    if accept == ["none"]:
        return not top or top[0] == NO_CAUSE
    return any(i in accept for i in top)


@pytest.mark.skipif(not BATCH.is_dir(), reason="the first fresh batch is not in this checkout")
def test_first_fresh_batch_keeps_its_floor(matrix: Matrix) -> None:
    logs = sorted(BATCH.glob("*.log"))
    assert len(logs) >= 60 and all(_case(p)[0] for p in logs), "every log names what it accepts"
    misses = sorted(p.stem for p in logs if not _right(p, matrix))
    score = len(logs) - len(misses)
    print(f"first fresh batch: {score}/{len(logs)} right in the first two findings; missed: {misses}")
    assert score >= FLOOR, misses
