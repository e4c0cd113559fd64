"""`bdv2 data fetch` against a real HTTP server on 127.0.0.1 (http.server in a thread, with Range support)
serving a release-shaped tree: TFRecord shards written with TensorFlow's writer and a dataset_info.json in the
TFDS schema. The server can drop a connection mid-file, serve a corrupted copy once, or lack a file."""

from __future__ import annotations

import json
import re
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import real_sample
from click.testing import CliRunner
from tmpfs import mounted

from bdv2.data_tools.cli import data
from bdv2.data_tools.download import DiskFull, NetworkError, NotFound
from bdv2.data_tools.fetch import STATE_FILE, CorruptFile, Request, fetch
from bdv2.data_tools.rlds import open_dir
from bdv2.data_tools.rlds.sample import write_rlds_sample

REL = "bridge_dataset/1.0.0"
TRAIN = [f"bridge_dataset-train.tfrecord-{i:05d}-of-00003" for i in range(3)]
RAW = ("demos_8_17.zip", "scripted_6_18.zip")
VAL = [f"bridge_dataset-val.tfrecord-{i:05d}-of-00003" for i in range(3)]


@dataclass
class Faults:
    """What the server does wrong, each at most once per name, and what it was asked."""

    drop_after: dict[str, int] = field(default_factory=dict)
    """name -> bytes sent before the connection is cut (on the first request for it)."""
    corrupt_once: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(file name, its Range header) for every GET."""


def _handler(root: Path, faults: Faults) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _file(self) -> Path | None:
            rel = self.path.lstrip("/")
            path = root / rel
            return None if rel.rsplit("/", 1)[-1] in faults.missing or not path.is_file() else path

        def do_HEAD(self) -> None:
            path = self._file()
            if path is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()

        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            faults.requests.append((name, self.headers.get("Range")))
            path = self._file()
            if path is None:
                self.send_error(404)
                return
            body = path.read_bytes()
            if name in faults.corrupt_once:
                faults.corrupt_once.discard(name)
                flip = len(body) // 2
                body = body[:flip] + bytes([body[flip] ^ 0xFF]) + body[flip + 1:]
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            start = int(match.group(1)) if match else 0
            if start >= len(body) and match:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206 if match else 200)
            if match:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            part = body[start:]
            if name in faults.drop_after:
                part = part[:faults.drop_after.pop(name)]
                self.wfile.write(part)
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(part)

    return Handler


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mirror's folder: tfds/bridge_dataset/1.0.0/ with 3 train and 3 val shards (TF's writer)."""
    root = tmp_path_factory.mktemp("mirror")
    write_rlds_sample(root / "tfds", episodes={"train": 6, "val": 3}, steps=6, image_size=32, shards_per_split=3)
    for archive in RAW:  # the raw release's names, holding a few stored members
        with zipfile.ZipFile(root / archive, "w") as z:
            for i in range(3):
                z.writestr(f"raw/bridge_data_v2/task/00/2023-01-01_00-00-00/raw/traj_group0/traj{i}/lang.txt",
                           f"put the cup in the sink {i}\n" * 400)
    return root


@pytest.fixture
def server(release: Path) -> Iterator[tuple[str, Faults]]:
    faults = Faults()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(release, faults))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", faults
    finally:
        httpd.shutdown()
        httpd.server_close()


def _request(url: str, out: Path, **kw: object) -> Request:
    return Request(out, url, retries=int(kw.pop("retries", 0)), retry_wait_s=0.0, timeout_s=10.0, **kw)  # type: ignore[arg-type]


def test_the_fixture_has_the_release_shape(release: Path) -> None:
    info = json.loads((release / "tfds" / REL / "dataset_info.json").read_text())
    assert [s["name"] for s in info["splits"]] == ["train", "val"]
    assert all(int(s["numBytes"]) > 0 for s in info["splits"])
    assert sorted(p.name for p in (release / "tfds" / REL).glob("*.tfrecord-*")) == sorted(TRAIN + VAL)


def test_smoke_fetches_one_shard_per_split_and_it_reads_as_a_partial_release(
        server: tuple[str, Faults], release: Path, tmp_path: Path) -> None:
    url, faults = server
    result = fetch(_request(url, tmp_path, splits=("train", "val"), shards=1))
    got = sorted(p.name for p in (tmp_path / REL).iterdir())
    assert got == sorted(["dataset_info.json", "features.json", TRAIN[0], VAL[0]])
    for name in (TRAIN[0], VAL[0]):
        assert (tmp_path / REL / name).read_bytes() == (release / "tfds" / REL / name).read_bytes()
    assert len(result.fetched) == 4 and not result.kept
    rlds = open_dir(tmp_path / REL)
    assert [p.name for p in rlds.shards["train"]] == [TRAIN[0]]
    assert any("1 of 3 shards present" in n for n in rlds.notes)
    # a second run downloads nothing: every file was verified and is unchanged
    faults.requests.clear()
    again = fetch(_request(url, tmp_path, splits=("train", "val"), shards=1))
    assert not again.fetched and len(again.kept) == 4
    assert faults.requests == []


def test_whole_release_matches_numbytes(server: tuple[str, Faults], tmp_path: Path) -> None:
    url, _ = server
    result = fetch(_request(url, tmp_path))
    assert len(result.fetched) == 2 + len(TRAIN) + len(VAL)
    assert sum("numBytes matches" in n for n in result.notes) == 2
    assert json.loads((tmp_path / STATE_FILE).read_text())["verified"].keys() >= {f"{REL}/{TRAIN[2]}"}


def test_parallel_jobs_fetch_the_same_tree_and_resume_a_dropped_file(
        server: tuple[str, Faults], release: Path, tmp_path: Path) -> None:
    url, faults = server
    faults.drop_after[TRAIN[2]] = 2000
    result = fetch(_request(url, tmp_path, jobs=3, retries=1))
    assert sorted(result.fetched) == sorted(f"{REL}/{n}" for n in ["dataset_info.json", "features.json", *TRAIN, *VAL])
    assert (TRAIN[2], "bytes=2000-") in faults.requests
    for name in TRAIN + VAL:
        assert (tmp_path / REL / name).read_bytes() == (release / "tfds" / REL / name).read_bytes()
    assert set(json.loads((tmp_path / STATE_FILE).read_text())["verified"]) == set(result.fetched)


def test_interrupted_transfer_resumes_with_a_range_request(
        server: tuple[str, Faults], release: Path, tmp_path: Path) -> None:
    url, faults = server
    faults.drop_after[TRAIN[1]] = 5000
    with pytest.raises(NetworkError, match=rf"{TRAIN[1]}: connection closed after 5000 of \d+ bytes; re-run"):
        fetch(_request(url, tmp_path, splits=("train",)))
    partial = tmp_path / REL / (TRAIN[1] + ".partial")
    assert partial.stat().st_size == 5000
    assert not (tmp_path / REL / TRAIN[1]).exists()  # never a half file under the final name
    faults.requests.clear()
    result = fetch(_request(url, tmp_path, splits=("train",)))
    assert (TRAIN[1], "bytes=5000-") in faults.requests
    assert not partial.exists()
    assert (tmp_path / REL / TRAIN[1]).read_bytes() == (release / "tfds" / REL / TRAIN[1]).read_bytes()
    assert f"{REL}/{TRAIN[1]}" in result.fetched


def test_a_dropped_connection_is_resumed_within_one_run_with_retries(
        server: tuple[str, Faults], tmp_path: Path) -> None:
    url, faults = server
    faults.drop_after[TRAIN[0]] = 3000
    fetch(_request(url, tmp_path, splits=("train",), shards=1, retries=1))
    assert (TRAIN[0], "bytes=3000-") in faults.requests


def test_a_corrupted_download_is_fetched_again(server: tuple[str, Faults], release: Path, tmp_path: Path) -> None:
    url, faults = server
    faults.corrupt_once.add(TRAIN[0])
    result = fetch(_request(url, tmp_path, splits=("train",), shards=1))
    assert [r for r, _ in result.refetched] == [f"{REL}/{TRAIN[0]}"]
    assert "corrupt TFRecord" in result.refetched[0][1]
    assert (tmp_path / REL / TRAIN[0]).read_bytes() == (release / "tfds" / REL / TRAIN[0]).read_bytes()


def test_a_file_corrupted_on_disk_is_found_by_verify_and_fetched_again(
        server: tuple[str, Faults], tmp_path: Path) -> None:
    url, _ = server
    fetch(_request(url, tmp_path, splits=("val",)))
    shard = tmp_path / REL / VAL[1]
    data = bytearray(shard.read_bytes())
    data[100] ^= 0x01
    shard.write_bytes(bytes(data))
    result = fetch(_request(url, tmp_path, splits=("val",), verify_all=True))
    assert [r for r, _ in result.refetched] == [f"{REL}/{VAL[1]}"]
    assert result.fetched == [f"{REL}/{VAL[1]}"]


def test_corrupt_twice_is_an_error_naming_the_url(release: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "bad_mirror"
    shutil.copytree(release, mirror)
    shard = mirror / "tfds" / REL / TRAIN[0]
    data = bytearray(shard.read_bytes())
    data[-2] ^= 0xFF  # the last record's data CRC
    shard.write_bytes(bytes(data))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(mirror, Faults()))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(CorruptFile, match=rf"{TRAIN[0]}: fetched twice, fails both times: corrupt TFRecord"):
            fetch(_request(f"http://127.0.0.1:{httpd.server_address[1]}/", tmp_path / "o", shards=1))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert not (tmp_path / "o" / REL / TRAIN[0]).exists()


def test_404_names_the_url(server: tuple[str, Faults], tmp_path: Path) -> None:
    url, faults = server
    faults.missing.add(TRAIN[2])
    with pytest.raises(NotFound, match=rf"^{re.escape(url)}tfds/{REL}/{TRAIN[2]}: not found \(HTTP 404\)"):
        fetch(_request(url, tmp_path, splits=("train",)))
    assert (tmp_path / REL / TRAIN[1]).is_file()  # what was finished before is kept


def test_unknown_split_lists_the_splits(server: tuple[str, Faults], tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(Exception, match=r"no split 'test' \(splits: train, val\)"):
        fetch(_request(url, tmp_path, splits=("test",)))


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(data, ["fetch", "--smoke", "--retries", "0", "--from", "http://127.0.0.1:9/",
                               "--out", str(tmp_path)])
    assert res.exit_code == 1
    assert "Error: http://127.0.0.1:9/tfds/bridge_dataset/1.0.0/dataset_info.json: cannot connect" in res.output


def test_full_disk_is_one_line_and_leaves_no_partial(server: tuple[str, Faults], release: Path,
                                                     tmp_path: Path) -> None:
    url, _ = server
    for small in mounted(tmp_path / "small", "size=96k"):
        with pytest.raises(DiskFull, match=r"no space left on its file system .*was not finished and was removed"):
            fetch(_request(url, small, splits=("train",)))
        assert list(small.rglob("*.partial")) == []
        kept = list(small.rglob("*.tfrecord-*"))
        assert len(kept) < len(TRAIN)  # the disk filled up before the last shard
        for shard in kept:  # what is there under a final name is whole
            assert shard.read_bytes() == (release / "tfds" / REL / shard.name).read_bytes()


def test_cli_in_a_log_prints_plain_lines_and_a_summary(server: tuple[str, Faults], tmp_path: Path) -> None:
    url, _ = server
    res = CliRunner().invoke(data, ["fetch", "--smoke", "--from", url, "--out", str(tmp_path),
                                    "--progress-interval", "0.1"])
    assert res.exit_code == 0, res.output
    assert re.search(r"^fetching: \d+/\d+ kB \(\d+ %\), [\d.,]+ kB/s", res.output, re.M)
    assert f"{tmp_path}: 4 fetched" in res.output
    assert "\x1b[" not in res.output


def test_cli_rejects_smoke_with_shards(tmp_path: Path) -> None:
    res = CliRunner().invoke(data, ["fetch", "--smoke", "--shards", "2", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--smoke chooses its own shards" in res.output


@pytest.mark.skipif(not real_sample.present(), reason=real_sample.SKIP_REASON)
def test_the_real_excerpt_served_as_a_mirror_passes_every_check(tmp_path: Path) -> None:
    """The octo excerpt's own dataset_info.json (written by TFDS) and shards: record counts, CRCs and the
    numBytes rule (record bytes without framing) hold on files TFDS wrote, not only on ours."""
    mirror = tmp_path / "mirror" / "tfds" / REL
    mirror.mkdir(parents=True)
    assert real_sample.PATH is not None
    for f in real_sample.PATH.iterdir():
        if f.name != "README.md":
            (mirror / f.name).symlink_to(f)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(tmp_path / "mirror", Faults()))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        result = fetch(_request(f"http://127.0.0.1:{httpd.server_address[1]}/", tmp_path / "out"))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(result.fetched) == 4 and not result.refetched
    assert sum("numBytes matches" in n for n in result.notes) == 2


def test_raw_archives_are_fetched_whole_and_resumed(server: tuple[str, Faults], release: Path, tmp_path: Path) -> None:
    url, faults = server
    faults.drop_after[RAW[0]] = 1000
    with pytest.raises(NetworkError, match=rf"{RAW[0]}: connection closed after 1000 of"):
        fetch(_request(url, tmp_path, raw=True))
    result = fetch(_request(url, tmp_path, raw=True))
    assert (RAW[0], "bytes=1000-") in faults.requests
    assert sorted(result.fetched) == sorted(RAW)
    for archive in RAW:
        assert (tmp_path / archive).read_bytes() == (release / archive).read_bytes()


def test_terminal_display_draws_a_bar_with_size_rate_and_eta(server: tuple[str, Faults], tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from bdv2.data_tools.render import fetch_progress

    url, _ = server
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160)
    with fetch_progress(console, 10.0) as sink:
        fetch(_request(url, tmp_path, splits=("val",)), sink)
    screen = buffer.getvalue()
    assert re.search(r"\d+(\.\d+)?/\d+(\.\d+)? kB", screen)  # rich's DownloadColumn
    assert re.search(r"[\d.]+ (k|M)?B/s", screen)  # TransferSpeedColumn
