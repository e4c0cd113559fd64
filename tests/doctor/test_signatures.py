"""The signature catalogue against a corpus of real logs (tests/data/log_corpus).

Each corpus file is named `<expected signature id>__<what>.log` and must be attributed to that
signature first; `none__*.log` are real, unrelated failures that no cause signature may claim.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bdv2.doctor.findings import Severity
from bdv2.doctor.logs.signatures import diagnose_log, match_text
from bdv2.doctor.matrix import Matrix

CORPUS = sorted((Path(__file__).parent.parent / "data" / "log_corpus").glob("*.log"))


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_log_names_its_cause(matrix: Matrix, path: Path) -> None:
    expected = path.name.split("__")[0]
    text = path.read_text()
    causes = [s.id for s in match_text(text, matrix) if not s.noise]
    if expected == "none":
        assert causes == [], f"{path.name} wrongly matched {causes}"
        findings = diagnose_log(text, matrix, name=path.name)
        assert findings[-1].id == "log-no-known-cause" and findings[-1].evidence
    else:
        assert causes and causes[0] == expected, f"{path.name}: first cause {causes[:3]}"
        first = next(f for f in diagnose_log(text, matrix, name=path.name) if f.severity is not Severity.INFO)
        assert first.id == expected and first.fix is not None and first.fix.summary


def test_corpus_is_broad(matrix: Matrix) -> None:
    wordings = sum(len(s.examples) for s in matrix.signatures if not s.noise)
    assert wordings >= 40
    assert len({p.name.split("__")[0] for p in CORPUS}) >= 40


def test_noise_alone_is_not_a_cause(matrix: Matrix) -> None:
    text = "\n".join(ex for s in matrix.signatures if s.noise for ex in s.examples)
    findings = diagnose_log(text, matrix)
    assert all(f.severity is Severity.INFO for f in findings[:-1])
    assert findings[-1].id == "log-no-known-cause"
