"""`bdv2 data view`: the page is self-contained (every image a decodable data: URI, every plot inline SVG with its
lines), renders in a real headless Chromium (when one is installed: `apt-get install chromium`), and the PNG
contact sheet has a row per episode."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bdv2.data_tools.cli import data
from bdv2.data_tools.view import STRIP_FRAMES, pick, write_contact_sheet, write_page

from .helpers import RldsSample

PLOTS_PER_EPISODE = 6  # translation, rotation, gripper actions; position, orientation, gripper proprio


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.plots: list[str] = []
        self.lines: list[str] = []
        self.resources: list[str] = []
        self.body: dict[str, str] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(a["src"])
        if tag == "svg":
            self.plots.append(a.get("data-title", ""))
        if tag == "polyline":
            self.lines.append(a["points"])
        if tag == "body":
            self.body = a
        self.resources += [v for k, v in a.items() if k in ("src", "href") and not v.startswith("data:")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


@pytest.fixture(scope="module")
def page(generated_rlds: RldsSample, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("view") / "page.html"
    eps = pick(generated_rlds.path, None, 3)
    result = write_page(generated_rlds.path, eps, out)
    assert result.images == 3 * (1 + STRIP_FRAMES) and result.plots == 3 * PLOTS_PER_EPISODE
    return out, len(eps)


def test_page_is_self_contained_and_complete(page: tuple[Path, int]) -> None:
    path, n = page
    p = _parse(path)
    assert p.resources == []  # nothing to fetch: no server, no network
    assert len(p.images) == n * (1 + STRIP_FRAMES)
    for src in p.images:
        mime, payload = re.fullmatch(r"data:(image/\w+);base64,(.+)", src).groups()  # type: ignore[union-attr]
        with Image.open(io.BytesIO(base64.b64decode(payload))) as im:
            assert im.format.lower() == mime.split("/")[1] and im.width > 0
    gifs = [s for s in p.images if s.startswith("data:image/gif")]
    with Image.open(io.BytesIO(base64.b64decode(gifs[0].split(",", 1)[1]))) as anim:
        assert anim.n_frames == 8  # one per step of the generated episodes
    assert len(p.plots) == n * PLOTS_PER_EPISODE and "action: translation" in p.plots
    assert all(len(line.split()) >= 2 for line in p.lines)  # every line has its points
    text = " ".join(p.text)
    assert "m per step" in text and "put the carrot in the pot" in text


def test_page_renders_in_headless_chromium(page: tuple[Path, int]) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless browser (apt-get install chromium); the parse test covers the page")
    path, n = page
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(0)))
    assert attrs["data-images-broken"] == "0"
    assert attrs["data-images-rendered"] == attrs["data-images"] == str(n * (1 + STRIP_FRAMES))
    assert dom.count("<polyline") == len(_parse(path).lines)


def test_contact_sheet(generated_rlds: RldsSample, tmp_path: Path) -> None:
    eps = pick(generated_rlds.path, None, 2)
    out = write_contact_sheet(eps, tmp_path / "sheet.png")
    with Image.open(out) as im:
        sheet = np.asarray(im.convert("RGB"))
    assert sheet.shape[1] == STRIP_FRAMES * 132 + 4 and sheet.shape[0] == 2 * (128 + 18 + 6) + 4
    first_frame = sheet[4 + 18:4 + 18 + 128, 4:132]
    assert first_frame.std() > 5  # a picture, not the blank background


def test_cli_one_raw_episode(sample_master: Path, tmp_path: Path) -> None:
    run = CliRunner().invoke(data, ["view", str(sample_master), "--episode", "2", "--out", str(tmp_path / "e.html"),
                                    "--png", str(tmp_path / "e.png")])
    assert run.exit_code == 0, run.output
    assert "1 episode(s), 5 images, 6 plots" in run.output  # 4 frames: the animation and 4 strip frames
    assert (tmp_path / "e.png").is_file()
    missing = CliRunner().invoke(data, ["view", str(sample_master), "--episode", "999", "--out",
                                        str(tmp_path / "x.html")])
    assert missing.exit_code == 1 and "no episode 999" in missing.output and not (tmp_path / "x.html").exists()
