"""Drawings on a feedback page, chosen by the rubric's `draw` for an output (never by an
assignment's names): heatmaps of a matrix, boxes given as (x1, y1, x2, y2), a plot of a sequence.
Inline SVG, numbers only (labels escaped): a page opens from disk and shows them offline.
"""
from __future__ import annotations

import math
from types import SimpleNamespace as Fields

import torch
from markupsafe import Markup, escape

CELL = 22
MAX_BOXES = 40
MAX_STEPS = 200        # a longer sequence is not plotted
SERIES = ("#1f5fa8", "#d9730d", "#1b7f3b")


def num(x) -> str:
    if isinstance(x, bool):
        return "T" if x else "F"
    if isinstance(x, float):
        return f"{x:.4g}" if math.isfinite(x) else str(x)
    return str(x)


# --- heatmaps ---------------------------------------------------------------------------------------
def _mix(a: tuple, b: tuple, t: float) -> str:
    t = min(max(t, 0.0), 1.0)
    # Spelled out per channel: this runs for every heatmap cell.
    return "#%02x%02x%02x" % (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t),
                              round(a[2] + (b[2] - a[2]) * t))


def _heat(m: torch.Tensor, color, title: str) -> Fields:
    """One heatmap: its cells as SVG rects, each titled with its value (numbers only: nothing to escape)."""
    rows, cols = m.shape
    cells = "".join(f'<rect x="{c * CELL}" y="{r * CELL}" width="{CELL}" height="{CELL}" fill="{color(x)}">'
                    f'<title>[{r}, {c}] = {num(x)}</title></rect>'
                    for r, row in enumerate(m.tolist()) for c, x in enumerate(row))
    return Fields(title=title, width=cols * CELL, height=rows * CELL, cells=Markup(cells))


def heatmaps(e: torch.Tensor, g: torch.Tensor) -> list[Fields]:
    """Yours, the reference's (one colour scale for both) and the difference, of two same-shaped matrices."""
    both = torch.cat([e.flatten(), g.flatten()])
    both = both[torch.isfinite(both)]
    lo, hi = (float(both.min()), float(both.max())) if both.numel() else (0.0, 1.0)
    span = hi - lo or 1.0
    white, blue, red = (255, 255, 255), (31, 78, 156), (200, 40, 40)

    def seq(x):
        return "#999999" if not math.isfinite(x) else _mix(white, blue, (x - lo) / span)
    d = (g - e).nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)
    m = float(d.abs().max()) or 1.0

    def div(x):
        return _mix(white, red, x / m) if x >= 0 else _mix(white, blue, -x / m)
    return [_heat(g, seq, "yours"), _heat(e, seq, "reference"), _heat(d, div, "difference")]


# --- a sequence (values over time: the first dim) --------------------------------------------------
def sequence_plot(e, g, width: int = 320, height: int = 120) -> Markup | None:
    """Up to three series of a (T, ...) value, the reference dashed and yours solid, one colour a
    series: where over time the two part. None when it is not a plottable sequence."""
    if not (isinstance(e, torch.Tensor) and isinstance(g, torch.Tensor) and e.dim() >= 1 and e.shape == g.shape
            and 1 < e.shape[0] <= MAX_STEPS and e.is_floating_point() and g.is_floating_point()):
        return None
    es, gs = e.double().reshape(e.shape[0], -1)[:, :len(SERIES)], g.double().reshape(g.shape[0], -1)[:, :len(SERIES)]
    both = torch.cat([es.flatten(), gs.flatten()])
    both = both[torch.isfinite(both)]
    if not both.numel():
        return None
    lo, hi = float(both.min()), float(both.max())
    span, steps = (hi - lo) or 1.0, es.shape[0]

    def points(col: torch.Tensor) -> str:
        return " ".join(f"{round(4 + t * (width - 8) / (steps - 1), 1)},{round(height - 4 - (v - lo) / span * (height - 8), 1)}"
                        for t, v in enumerate(col.tolist()) if math.isfinite(v))
    lines = []
    for k in range(es.shape[1]):
        color = SERIES[k]
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" stroke-dasharray="4 3" '
                     f'points="{points(es[:, k])}"><title>reference [:, {k}]</title></polyline>')
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points(gs[:, k])}">'
                     f'<title>yours [:, {k}]</title></polyline>')
    return Markup(f'<svg class="sequence" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" role="img"><rect class="frame" x="0" y="0" width="{width}" '
                  f'height="{height}" fill="#fafafa" stroke="#ccc"/>{"".join(lines)}</svg>')


# --- boxes (x1, y1, x2, y2) ------------------------------------------------------------------------
def box_panels(e, g, inputs, titles: dict) -> list[Fields]:
    """Drawings for an output about boxes, by its form: indices into the first (N, 4) input (the
    kept ones, yours and the reference's; a 1-D input of N scores labels them), (N, 4) boxes (drawn
    over the input boxes), or an (N, M) matrix between two (N, 4) and (M, 4) inputs (both sets).
    `titles`: "kept_yours", "kept_reference", "two_sets", "boxes" in the page's language."""
    boxes = [a for a in inputs or () if isinstance(a, torch.Tensor) and a.dim() == 2 and a.shape[-1] == 4
             and a.is_floating_point() and bool(torch.isfinite(a).all())]
    if not boxes or not isinstance(e, torch.Tensor):
        return []
    if e.dim() == 1 and not e.is_floating_point() and e.dtype != torch.bool:
        first = boxes[0]
        scores = next((a.tolist() for a in inputs if isinstance(a, torch.Tensor) and a.dim() == 1
                       and a.is_floating_point() and len(a) == len(first)), [None] * len(first))
        panels = []
        for title, keep in ((titles["kept_yours"], g), (titles["kept_reference"], e)):
            kept = _indices(keep, len(first)) or []
            shapes = [(b, "kept" if k in kept else "dropped",
                       f"{k}" + (f" ({num(sc)})" if sc is not None else "") + (f" #{kept.index(k) + 1}" if k in kept else ""))
                      for k, (b, sc) in enumerate(zip(first.tolist(), scores))]
            panels.append(_panel(title, shapes, first))
        return panels
    if e.dim() == 2 and e.shape[-1] == 4 and e.is_floating_point():
        shapes = [(b, "dropped", f"p{k}") for k, b in enumerate(boxes[0].tolist())]
        every = [boxes[0]]
        for cls, v in (("reference", e), ("yours", g)):
            if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[-1] == 4 and v.is_floating_point() \
                    and torch.isfinite(v).all():
                shapes += [(b, cls, "") for b in v.tolist()]
                every.append(v)
        return [_panel(titles["boxes"], shapes, torch.cat(every))]
    if e.dim() == 2 and len(boxes) >= 2 and e.shape == (len(boxes[0]), len(boxes[1])):
        shapes = [(b, "set1", f"a{k}") for k, b in enumerate(boxes[0].tolist())] + \
                 [(b, "set2", f"b{k}") for k, b in enumerate(boxes[1].tolist())]
        return [_panel(titles["two_sets"], shapes, torch.cat(boxes[:2]))]
    return []


def _indices(keep, n: int) -> list[int] | None:
    if not isinstance(keep, torch.Tensor) or keep.dim() != 1 or keep.is_floating_point() or keep.dtype == torch.bool:
        return None
    ks = [int(k) for k in keep.tolist()]
    return ks if all(0 <= k < n for k in ks) else None


def _panel(title: str, shapes, everything: torch.Tensor, width: int = 260) -> Fields:
    if everything.numel() == 0 or len(shapes) > MAX_BOXES:
        return Fields(title=title, width=width, height=40, boxes=Markup(), empty=True)
    x1, y1 = float(everything[:, 0].min()), float(everything[:, 1].min())
    x2, y2 = float(everything[:, 2].max()), float(everything[:, 3].max())
    pad = 0.05 * max(x2 - x1, y2 - y1, 1.0)
    x1, y1, x2, y2 = x1 - pad, y1 - pad, x2 + pad, y2 + pad
    s = width / max(x2 - x1, 1e-6)
    height = max(round((y2 - y1) * s), 40)
    out = []
    for (a, b, c, d), cls, label in shapes:
        box = (f'<g class="box {cls}"><rect x="{round((a - x1) * s, 1)}" y="{round((b - y1) * s, 1)}" '
               f'width="{round(max(c - a, 0) * s, 1)}" height="{round(max(d - b, 0) * s, 1)}">'
               f'<title>{escape(f"{label} ({num(a)}, {num(b)}, {num(c)}, {num(d)})")}</title></rect>')
        if label:   # at the bottom-left corner: nested boxes often share their top-left one
            box += f'<text x="{round((a - x1) * s + 3, 1)}" y="{round((d - y1) * s - 3, 1)}">{escape(label)}</text>'
        out.append(box + "</g>")
    return Fields(title=title, width=width, height=height, boxes=Markup("".join(out)), empty=False)
