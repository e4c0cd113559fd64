"""Where `bdv2 matrix verify` gets the bdv2 it installs into each row's venv (PEP 610 direct_url.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bdv2.doctor.matrix import Matrix
from bdv2.doctor.matrix.selfsource import SelfSource, SelfSourceError, SourceKind, from_direct_url, self_source
from bdv2.doctor.matrix.verify import PartStatus, verify_row


def test_a_local_wheel_or_folder_is_installed_from_where_it_is(tmp_path: Path) -> None:
    wheel = tmp_path / "bdv2-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    s = from_direct_url({"url": wheel.as_uri(), "archive_info": {}}, "bdv2", "0.1.0")
    assert (s.kind, s.spec) == (SourceKind.LOCAL_FILE, str(wheel))
    s = from_direct_url({"url": tmp_path.as_uri(), "dir_info": {"editable": True}}, "bdv2", "0.1.0")
    assert (s.kind, s.spec) == (SourceKind.LOCAL_DIR, str(tmp_path))


def test_a_deleted_wheel_or_no_direct_url_means_the_same_version_from_the_index(tmp_path: Path) -> None:
    gone = tmp_path / "gone" / "bdv2-0.1.0-py3-none-any.whl"
    s = from_direct_url({"url": gone.as_uri(), "archive_info": {}}, "bdv2", "0.1.0")
    assert (s.kind, s.spec) == (SourceKind.INDEX, "bdv2==0.1.0")
    assert "not on the package index" in s.install_hint() and "build --wheel" in s.install_hint()


def test_vcs_and_remote_archives_keep_their_url() -> None:
    s = from_direct_url({"url": "https://github.com/o/bdv2.git", "vcs_info": {"vcs": "git", "commit_id": "abc"}},
                        "bdv2", "0.1.0")
    assert s.spec == "bdv2 @ git+https://github.com/o/bdv2.git@abc" and s.kind is SourceKind.VCS
    s = from_direct_url({"url": "https://example.org/bdv2-0.1.0.tar.gz", "archive_info": {}}, "bdv2", "0.1.0")
    assert s.spec == "bdv2 @ https://example.org/bdv2-0.1.0.tar.gz"


def test_the_running_bdv2_is_found_and_an_unknown_distribution_is_a_clear_error() -> None:
    s = self_source()  # the tests run from a checkout (installed editable, or not at all)
    assert (s.kind, s.spec) == (SourceKind.LOCAL_DIR, str(Path(__file__).resolve().parents[2])) and s.version
    with pytest.raises(SelfSourceError, match="without being installed"):
        self_source("no-such-dist-bdv2-test")


def test_verify_installs_the_source_it_is_given(matrix: Matrix, tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def fake(cmd: list[str], env: dict[str, str] | None, timeout: float) -> tuple[int, str]:
        calls.append(cmd)
        return 1, "ERROR: No matching distribution found for bdv2==9.9.9"

    src = SelfSource(SourceKind.INDEX, "bdv2==9.9.9", "9.9.9")
    v = verify_row(matrix.row("cpu-current"), matrix, tmp_path, source=src, run=fake, log=lambda s: None)
    install = calls[0]
    assert install[1:4] == ["-m", "pip", "install"] and "bdv2==9.9.9" in install
    part = next(p for p in v.parts if p.name == "install")
    assert part.status is PartStatus.FAIL and "not on the package index" in part.detail
    assert "No matching distribution" in part.detail and not v.ok
