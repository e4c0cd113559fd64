"""`bdv2 data view`: look at episodes without a server. One self-contained HTML page (every image inlined as a
data: URI, plots as inline SVG, no external resource) per call, and a PNG contact sheet for terminals and bug
reports. Per episode: camera 0 as an animated GIF and as a strip of frames, the instruction(s), and the actions
and proprio plotted over time, labelled with the units of the action contract (contract.py) fitted on them.

A small inline script marks, once the page has loaded, how many images the browser decoded
(``<body data-images-rendered=N data-images-broken=M>``), so a headless browser can check what it renders.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .contract import ActionContract, infer_contract
from .episodes import Ep, iter_episodes
from .errors import DataToolsError

STRIP_FRAMES = 8
"""Frames in each episode's strip and contact-sheet row (evenly spaced, first and last included)."""
THUMB = 128
"""Side of a strip frame and of a contact-sheet cell, in pixels."""
GIF_MS = 200
"""Milliseconds per GIF frame: BridgeData is recorded at 5 Hz."""
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
AXES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")


@dataclass(frozen=True)
class Page:
    path: Path
    episodes: list[str]
    """Where each shown episode is."""
    images: int
    plots: int
    contract: ActionContract


def pick(path: Path, episode: int | None, sample: int, depth: int = 5) -> list[Ep]:
    """Episode number `episode` (reading order, from 0), or the first `sample` episodes, with frames.

    Raises:
        DataToolsError: nothing readable, or fewer episodes than `episode` + 1.
    """
    problems: list[str] = []
    _, it = iter_episodes(path, depth=depth, frames=True, problems=problems)
    chosen: list[Ep] = []
    for i, e in enumerate(it):
        if episode is None and e.frames is not None and len(e.frames):
            chosen.append(e)
            if len(chosen) >= sample:
                break
        elif i == episode:
            chosen.append(e)
            break
    if not chosen:
        why = f"no episode {episode}" if episode is not None else "no readable episode with frames"
        raise DataToolsError(f"{path}: {why}" + (f" ({problems[0]})" if problems else ""))
    return chosen


def _evenly(n: int, k: int) -> list[int]:
    """min(k, n) indices into n items, evenly spaced, first and last included."""
    m = min(k, n)
    return sorted({round(i * (n - 1) / max(m - 1, 1)) for i in range(m)})


def _thumb(frame: np.ndarray, size: int = THUMB) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.BILINEAR))


def _data_uri(image: np.ndarray | list[np.ndarray], fmt: str) -> str:
    from PIL import Image

    buf = io.BytesIO()
    if isinstance(image, list):  # an animation
        # Each frame to 256 colours with the fast octree method: PIL's default median cut takes ~0.1 s a frame.
        frames = [Image.fromarray(f).quantize(256, method=Image.Quantize.FASTOCTREE) for f in image]
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=GIF_MS, loop=0)
    else:
        Image.fromarray(image).save(buf, format=fmt)
    mime = {"GIF": "image/gif", "JPEG": "image/jpeg", "PNG": "image/png"}[fmt if not isinstance(image, list) else "GIF"]
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"


def _svg_plot(values: np.ndarray, dims: Sequence[int], title: str, unit: str, width: int = 520,
              height: int = 170) -> str:
    """Lines of values[:, d] for d in dims over the step index, with a zero line, axis extremes and a legend."""
    pad_l, pad_r, pad_t, pad_b = 58, 90, 22, 24
    x = np.arange(len(values))
    sel = values[:, list(dims)] if len(values) else np.zeros((0, len(dims)))
    finite = sel[np.isfinite(sel)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    span_x = max(len(values) - 1, 1)

    def px(t: float) -> float:
        return pad_l + (width - pad_l - pad_r) * t / span_x

    def py(v: float) -> float:
        return pad_t + (height - pad_t - pad_b) * (hi - v) / (hi - lo)

    parts = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'data-title="{html.escape(title)}">',
             f'<text x="{pad_l}" y="14" font-size="12">{html.escape(title)} ({html.escape(unit)})</text>',
             f'<rect x="{pad_l}" y="{pad_t}" width="{width - pad_l - pad_r}" height="{height - pad_t - pad_b}" '
             'fill="none" stroke="#ccc"/>',
             f'<text x="{pad_l - 4}" y="{pad_t + 9}" font-size="10" text-anchor="end">{hi:.3g}</text>',
             f'<text x="{pad_l - 4}" y="{height - pad_b}" font-size="10" text-anchor="end">{lo:.3g}</text>',
             f'<text x="{width - pad_r}" y="{height - 6}" font-size="10" text-anchor="end">step {span_x}</text>']
    if lo < 0 < hi:
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{py(0):.1f}" y2="{py(0):.1f}" stroke="#eee"/>')
    for j, d in enumerate(dims):
        pts = " ".join(f"{px(float(t)):.1f},{py(float(v)):.1f}" for t, v in zip(x, sel[:, j], strict=True)
                       if np.isfinite(v))
        colour = COLOURS[d % len(COLOURS)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}" '
                     f'data-axis="{AXES[d]}"/>')
        parts.append(f'<text x="{width - pad_r + 8}" y="{pad_t + 12 + 14 * j}" font-size="11" '
                     f'fill="{colour}">{AXES[d]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _units(c: ActionContract) -> tuple[str, str]:
    """(translation unit, rotation unit) of the actions, from the contract."""
    if c.units == "m, rad per step":
        return "m per step", "rad per step"
    return c.units, c.units


def _episode_html(e: Ep, c: ActionContract) -> tuple[str, int, int]:
    assert e.frames is not None
    idx = _evenly(len(e.frames), STRIP_FRAMES)
    gif = _data_uri([_thumb(f, 2 * THUMB) for f in e.frames], "GIF")
    strip = "".join(f'<figure><img class="frame" alt="step {t}" src="{_data_uri(_thumb(e.frames[t]), "JPEG")}">'
                    f"<figcaption>{t}</figcaption></figure>" for t in idx)
    text = [s for s in e.language if s.strip()]
    instruction = "<br>".join(html.escape(s) for s in text) if text else "<em>(no instruction)</em>"
    trans, rot = _units(c)
    plots = [
        _svg_plot(e.actions, (0, 1, 2), "action: translation", trans),
        _svg_plot(e.actions, (3, 4, 5), "action: rotation", rot),
        _svg_plot(e.actions, (6,), "action: gripper", f"{c.gripper.range}, {c.gripper.polarity}"),
        _svg_plot(e.state, (0, 1, 2), "proprio: position", "m"),
        _svg_plot(e.state, (3, 4, 5), "proprio: orientation", "rad"),
        _svg_plot(e.state, (6,), "proprio: gripper opening", "0 closed ... 1 open"),
    ]
    body = (f'<section class="episode"><h2>{html.escape(e.where)} <small>({html.escape(e.split)}, '
            f'{len(e.actions)} transitions)</small></h2>'
            f'<p class="instruction">{instruction}</p>'
            f'<div class="media"><img class="animation" alt="camera 0, animated" src="{gif}">'
            f'<div class="strip">{strip}</div></div>'
            f'<div class="plots">{"".join(plots)}</div></section>')
    return body, 1 + len(idx), len(plots)


_STYLE = """body{font-family:sans-serif;margin:1em 2em;color:#222}h2{font-size:1em;word-break:break-all}
.instruction{font-size:1.1em;background:#f4f4f4;padding:.4em}.media{display:flex;gap:1em;align-items:flex-start}
.strip{display:flex;flex-wrap:wrap;gap:4px}figure{margin:0;text-align:center;font-size:10px}
.plots{display:flex;flex-wrap:wrap;gap:.5em}section{border-top:1px solid #ccc;padding-top:.5em}"""
_SCRIPT = """window.addEventListener('load',function(){var ok=0,bad=0;
document.querySelectorAll('img').forEach(function(i){if(i.complete&&i.naturalWidth>0){ok++}else{bad++}});
document.body.setAttribute('data-images-rendered',ok);document.body.setAttribute('data-images-broken',bad);});"""


def write_page(path: Path, eps: Sequence[Ep], out: Path) -> Page:
    """Write the HTML page for `eps` (with frames) to `out`, atomically."""
    from bdv2.fsutil import write_atomic

    c = infer_contract([(e.state, e.actions) for e in eps if len(e.actions)])
    sections, images, plots = [], 0, 0
    for e in eps:
        body, n_img, n_plot = _episode_html(e, c)
        sections.append(body)
        images += n_img
        plots += n_plot
    g = c.gripper
    header = (f"<h1>{html.escape(str(path))}</h1><p>{len(eps)} episode(s). Action contract fitted on them: frame "
              f"{c.frame}, {html.escape(c.units)} (scale {c.scale:.3g}, R² {c.fit.get('translation', 0):.2f}), "
              f"latency {c.latency} step(s), gripper {g.range} {'binary' if g.binary else 'continuous'} "
              f"({g.polarity}).</p>")
    page = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>bdv2 data view: {html.escape(path.name)}'
            f"</title><style>{_STYLE}</style><script>{_SCRIPT}</script></head>"
            f'<body data-episodes="{len(eps)}" data-images="{images}" data-plots="{plots}">'
            f"{header}{''.join(sections)}</body></html>\n")
    write_atomic(out, page)
    return Page(out, [e.where for e in eps], images, plots, c)


def write_contact_sheet(eps: Sequence[Ep], out: Path) -> Path:
    """A PNG: one row per episode, STRIP_FRAMES frames of camera 0, the instruction written above the row."""
    from PIL import Image, ImageDraw

    from bdv2.fsutil import atomic_output

    label_h = 18
    width = STRIP_FRAMES * (THUMB + 4) + 4
    sheet = Image.new("RGB", (width, len(eps) * (THUMB + label_h + 6) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    y = 4
    for e in eps:
        assert e.frames is not None
        text = next((s for s in e.language if s.strip()), "(no instruction)")
        file, _, index = e.where.partition("[")
        short = "/".join(Path(file).parts[-4:]) + (f"[{index}" if index else "")  # enough of the path to find it
        draw.text((4, y + 2), f"{text}  ({short})", fill="black")
        y += label_h
        for i, t in enumerate(_evenly(len(e.frames), STRIP_FRAMES)):
            sheet.paste(Image.fromarray(_thumb(e.frames[t])), (4 + i * (THUMB + 4), y))
        y += THUMB + 6
    with atomic_output(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
