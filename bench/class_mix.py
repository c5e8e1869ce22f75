"""A realistic hw2 class for bench_class.py: varied correct styles, known mistakes, exceptions,
infinite loops and blank starters, as notebooks, `# %%` scripts and Markdown answer sheets.

Every submission is the course's starter (reference/hw2/starter.ipynb / .py, or an answer sheet
shaped like submissions/hw2/001_seed_repaired/2.md) with its `#todo` blanks filled from STYLES:
one style per block, picked by a seeded random.Random. A style is source text; module-level helpers
come before a `@@` line, the function's body after it. Mistakes and faults are edits of one style.
"""
from __future__ import annotations

import json
import random
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "reference" / "hw2"
SHEET = ROOT / "submissions" / "hw2" / "001_seed_repaired" / "2.md"
FUNCS = ("scaled_dot_product_attention", "causal_mask", "multi_head_attention", "box_iou", "nms",
         "encode_boxes", "decode_boxes", "roi_pool")
PART_A = {"qkv": "Q = ...\nK = ...\nV = ...", "score": "d = ...\nscore = ...\nattention = ...", "output": "output = ..."}
DOWNSTREAM = {"Q": {"score", "attention", "output"}, "K": {"score", "attention", "output"}, "V": {"output"},
              "score": {"attention", "output"}, "attention": {"output"}, "output": set()}
D = textwrap.dedent
_CXCYWH = "def to_cxcywh(b):\n    wh = b[:, 2:] - b[:, :2]\n    return b[:, :2] + 0.5 * wh, wh\n@@\n"
_IOU_ONE = D("""\
    def iou_one(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
        return iw * ih / union if union > 0 else 0.0
    @@
    """)
STYLES = {
    "qkv": ["Q = X @ W_Q\nK = X @ W_K\nV = X @ W_V",
            "Q = torch.matmul(X, W_Q)\nK = torch.matmul(X, W_K)\nV = torch.matmul(X, W_V)\nprint(Q.shape, K.shape, V.shape)",
            "Q, K, V = [X @ W for W in (W_Q, W_K, W_V)]"],
    "score": ["d = W_Q.shape[-1]\nscore = Q @ K.T / d ** 0.5\nattention = F.softmax(score, dim=-1)",
              "d = K.shape[1]\nscore = torch.einsum('id,jd->ij', Q, K) * d ** -0.5\nattention = torch.softmax(score, dim=1)",
              "d = Q.size(-1)\nscore = torch.matmul(Q, K.transpose(0, 1)) / torch.sqrt(torch.tensor(float(d)))\n"
              "exp_s = torch.exp(score - score.max(dim=-1, keepdim=True).values)\nattention = exp_s / exp_s.sum(dim=-1, keepdim=True)"],
    "output": ["output = attention @ V", "output = torch.einsum('ij,jd->id', attention, V)", "output = torch.matmul(attention, V)"],
    "scaled_dot_product_attention": [D("""\
        d = Q.shape[-1]
        scores = Q @ K.transpose(-2, -1) / d ** 0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = F.softmax(scores, dim=-1)
        return weights @ V, weights"""), D("""\
        scale = 1.0 / Q.size(-1) ** 0.5
        scores = torch.matmul(Q, K.transpose(-1, -2)) * scale
        if mask is not None:
            scores = torch.where(mask, scores, torch.full_like(scores, float("-inf")))
        weights = torch.softmax(scores, dim=-1)
        return torch.matmul(weights, V), weights"""), D("""\
        def stable_softmax(x, dim=-1):
            x = x - x.amax(dim=dim, keepdim=True)
            e = torch.exp(x)
            return e / e.sum(dim=dim, keepdim=True)
        @@
        scores = torch.einsum("...qd,...kd->...qk", Q, K) / Q.shape[-1] ** 0.5
        if mask is not None:
            scores = scores.masked_fill(mask == False, float("-inf"))
        weights = stable_softmax(scores)
        return torch.einsum("...qk,...kv->...qv", weights, V), weights""")],
    "causal_mask": ["return torch.tril(torch.ones(n, n, dtype=torch.bool))",
                    "i = torch.arange(n)\nreturn i.unsqueeze(1) >= i.unsqueeze(0)",
                    "m = torch.zeros(n, n, dtype=torch.bool)\nfor i in range(n):\n    for j in range(i + 1):\n"
                    "        m[i, j] = True\nreturn m",
                    "return ~torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)"],
    "multi_head_attention": [D("""\
        n, d_model = X.shape
        d_head = d_model // num_heads
        def split(M):
            return M.reshape(n, num_heads, d_head).transpose(0, 1)
        q, k, v = split(X @ W_Q), split(X @ W_K), split(X @ W_V)
        mask = causal_mask(n) if causal else None
        heads, weights = scaled_dot_product_attention(q, k, v, mask)
        concat = heads.transpose(0, 1).reshape(n, d_model)
        return concat @ W_O, weights"""), D("""\
        n, d_model = X.shape
        d_head = d_model // num_heads
        Q, K, V = X @ W_Q, X @ W_K, X @ W_V
        outs, ws = [], []
        for h in range(num_heads):
            cols = slice(h * d_head, (h + 1) * d_head)
            s = Q[:, cols] @ K[:, cols].T / d_head ** 0.5
            if causal:
                s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
            w = torch.softmax(s, dim=-1)
            outs.append(w @ V[:, cols])
            ws.append(w)
        return torch.cat(outs, dim=1) @ W_O, torch.stack(ws)"""), D("""\
        n, d_model = X.shape
        h, dh = num_heads, d_model // num_heads
        q = (X @ W_Q).view(n, h, dh).permute(1, 0, 2)
        k = (X @ W_K).view(n, h, dh).permute(1, 0, 2)
        v = (X @ W_V).view(n, h, dh).permute(1, 0, 2)
        scores = torch.bmm(q, k.transpose(1, 2)) / dh ** 0.5
        if causal:
            scores = torch.where(causal_mask(n), scores, torch.full_like(scores, float("-inf")))
        attn = torch.softmax(scores, dim=-1)
        out = torch.bmm(attn, v).permute(1, 0, 2).reshape(n, d_model)
        return out @ W_O, attn""")],
    "box_iou": [D("""\
        area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
        area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
        lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
        rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        return inter / (area1[:, None] + area2[None, :] - inter)"""), D("""\
        iou = torch.zeros(len(boxes1), len(boxes2), dtype=boxes1.dtype)
        for i, (ax1, ay1, ax2, ay2) in enumerate(boxes1.tolist()):
            for j, (bx1, by1, bx2, by2) in enumerate(boxes2.tolist()):
                inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
                union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
                iou[i, j] = inter / union
        return iou"""), D("""\
        def box_area(b):
            return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        @@
        rows = []
        for b in boxes1:
            w = torch.clamp(torch.minimum(b[2], boxes2[:, 2]) - torch.maximum(b[0], boxes2[:, 0]), min=0)
            h = torch.clamp(torch.minimum(b[3], boxes2[:, 3]) - torch.maximum(b[1], boxes2[:, 1]), min=0)
            rows.append(w * h / (box_area(b[None])[0] + box_area(boxes2) - w * h))
        return torch.stack(rows) if rows else boxes1.new_zeros((0, len(boxes2)))""")],
    "nms": [D("""\
        order = scores.argsort(descending=True)
        keep = []
        while order.numel() > 0:
            i = order[0]
            keep.append(int(i))
            rest = order[1:]
            ious = box_iou(boxes[i].unsqueeze(0), boxes[rest])[0]
            order = rest[ious <= iou_threshold]
        return torch.tensor(keep, dtype=torch.int64)"""), D("""\
        iou = box_iou(boxes, boxes)
        order = torch.argsort(scores, descending=True).tolist()
        suppressed = [False] * len(order)
        keep = []
        for i in order:
            if suppressed[i]:
                continue
            keep.append(i)
            for j in order:
                if iou[i, j] > iou_threshold:
                    suppressed[j] = True
        return torch.tensor(keep, dtype=torch.long)"""), _IOU_ONE + D("""\
        b, s = boxes.tolist(), scores.tolist()
        keep = []
        for i in sorted(range(len(b)), key=lambda i: s[i], reverse=True):
            if all(iou_one(b[i], b[k]) <= iou_threshold for k in keep):
                keep.append(i)
        return torch.tensor(keep, dtype=torch.int64)""")],
    "encode_boxes": [D("""\
        px1, py1, px2, py2 = proposals.unbind(dim=1)
        gx1, gy1, gx2, gy2 = targets.unbind(dim=1)
        pw, ph = px2 - px1, py2 - py1
        gw, gh = gx2 - gx1, gy2 - gy1
        px, py, gx, gy = px1 + 0.5 * pw, py1 + 0.5 * ph, gx1 + 0.5 * gw, gy1 + 0.5 * gh
        return torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=1)"""),
        _CXCYWH + "p_ctr, p_wh = to_cxcywh(proposals)\nt_ctr, t_wh = to_cxcywh(targets)\n"
                  "return torch.cat([(t_ctr - p_ctr) / p_wh, (t_wh / p_wh).log()], dim=1)"],
    "decode_boxes": [D("""\
        px1, py1, px2, py2 = proposals.unbind(dim=1)
        dx, dy, dw, dh = deltas.unbind(dim=1)
        pw, ph = px2 - px1, py2 - py1
        cx, cy = px1 + 0.5 * pw + dx * pw, py1 + 0.5 * ph + dy * ph
        w, h = pw * torch.exp(dw), ph * torch.exp(dh)
        return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)"""),
        _CXCYWH + "p_ctr, p_wh = to_cxcywh(proposals)\nctr = p_ctr + deltas[:, :2] * p_wh\n"
                  "wh = p_wh * deltas[:, 2:].exp()\nreturn torch.cat([ctr - wh / 2, ctr + wh / 2], dim=1)"],
    "roi_pool": [D("""\
        import math
        def round_away(v):
            return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)
        @@
        oh, ow = output_size
        C, H, W = features.shape[1:]
        out = features.new_zeros((rois.shape[0], C, oh, ow))
        for k in range(rois.shape[0]):
            b = int(rois[k, 0])
            x1, y1, x2, y2 = [round_away(v) for v in (rois[k, 1:].to(features.dtype) * spatial_scale).tolist()]
            rw, rh = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
            bw, bh = torch.tensor(rw, dtype=features.dtype) / ow, torch.tensor(rh, dtype=features.dtype) / oh
            for i in range(oh):
                top = min(max(int(torch.floor(i * bh)) + y1, 0), H)
                bottom = min(max(int(torch.ceil((i + 1) * bh)) + y1, 0), H)
                for j in range(ow):
                    left = min(max(int(torch.floor(j * bw)) + x1, 0), W)
                    right = min(max(int(torch.ceil((j + 1) * bw)) + x1, 0), W)
                    if bottom > top and right > left:
                        out[k, :, i, j] = features[b, :, top:bottom, left:right].amax(dim=(1, 2))
        return out"""), D("""\
        oh, ow = output_size
        _, C, H, W = features.shape
        dt = features.dtype
        xy = rois[:, 1:].to(dt) * spatial_scale
        low = torch.floor(xy.abs())
        xy = torch.sign(xy) * (low + (xy.abs() - low >= 0.5))   # round half away from zero
        start = xy[:, :2].long()
        size = (xy[:, 2:].long() - start + 1).clamp(min=1)
        def edges(n_bins, roi_len, offset, limit):
            bin_len = roi_len.to(dt)[:, None] / n_bins
            i = torch.arange(n_bins, dtype=dt)[None, :]
            lo = (torch.floor(i * bin_len).long() + offset[:, None]).clamp(0, limit)
            hi = (torch.ceil((i + 1) * bin_len).long() + offset[:, None]).clamp(0, limit)
            cells = torch.arange(limit)
            return (cells >= lo[..., None]) & (cells < hi[..., None])
        inside = edges(oh, size[:, 1], start[:, 1], H)[:, :, None, :, None] & edges(ow, size[:, 0], start[:, 0], W)[:, None, :, None, :]
        fm = features[rois[:, 0].long()][:, :, None, None]
        pooled = fm.masked_fill(~inside[:, None], float("-inf")).amax(dim=(-2, -1))
        empty = ~inside.any(dim=-1).any(dim=-1)
        return pooled.masked_fill(empty[:, None], 0.0)""")],
}
# (item, rubric mistake id or None, style of its block, [(old, new), ...]): student code for known mistakes
MISTAKES = [
    ("Q", "qkv-weight-transposed", 0, [("X @ W_Q\n", "X @ W_Q.T\n")]),
    ("score", "score-no-scale", 0, [(" / d ** 0.5", "")]),
    ("score", "score-div-d", 0, [("d ** 0.5", "d")]),
    ("score", "score-transposed", 0, [("Q @ K.T", "K @ Q.T")]),
    ("attention", "softmax-dim0", 0, [("dim=-1", "dim=0")]),
    ("output", "output-attention-transposed", 0, [("attention @ V", "attention.T @ V")]),
    ("scaled_dot_product_attention", "sdpa-no-scale", 0, [(" / d ** 0.5", "")]),
    ("scaled_dot_product_attention", "sdpa-mask-fill-zero", 0, [('float("-inf")', "0.0")]),
    ("scaled_dot_product_attention", "sdpa-mask-inverted", 0, [("~mask", "mask")]),
    ("scaled_dot_product_attention", "sdpa-softmax-dim0", 0, [("dim=-1", "dim=-2")]),
    ("scaled_dot_product_attention", "sdpa-scale-dv", 1, [("Q.size(-1)", "V.size(-1)")]),
    ("scaled_dot_product_attention", "sdpa-unstable-softmax", 2, [("    x = x - x.amax(dim=dim, keepdim=True)\n", "")]),
    ("causal_mask", "causal-no-diagonal", 0, [("torch.bool))", "torch.bool), diagonal=-1)")]),
    ("causal_mask", "causal-inverted", 3, [("return ~", "return ")]),
    ("causal_mask", "causal-float", 0, [(", dtype=torch.bool", "")]),
    ("multi_head_attention", "mha-no-output-projection", 0, [("concat @ W_O", "concat")]),
    ("multi_head_attention", "mha-weights-averaged", 2, [("W_O, attn", "W_O, attn.mean(dim=0)")]),
    ("multi_head_attention", "mha-scale-dmodel", 1, [("/ d_head ** 0.5", "/ d_model ** 0.5")]),
    ("multi_head_attention", "mha-causal-ignored", 2, [(
        'if causal:\n    scores = torch.where(causal_mask(n), scores, torch.full_like(scores, float("-inf")))\n', "")]),
    ("multi_head_attention", "mha-weight-transposed", 1, [("X @ W_Q, X @ W_K, X @ W_V", "X @ W_Q.T, X @ W_K.T, X @ W_V.T"),
                                                          ("@ W_O", "@ W_O.T")]),
    ("box_iou", "iou-no-clamp", 0, [(".clamp(min=0)", "")]),
    ("box_iou", "iou-union-sum", 0, [(" - inter)", ")")]),
    ("box_iou", "iou-plus-one", 0, [(f"(boxes{b}[:, {i}] - boxes{b}[:, {j}])", f"(boxes{b}[:, {i}] - boxes{b}[:, {j}] + 1)")
                                    for b in (1, 2) for i, j in ((2, 0), (3, 1))] + [("(rb - lt)", "(rb - lt + 1)")]),
    ("nms", "nms-ge", 1, [("> iou_threshold", ">= iou_threshold")]),
    ("nms", "nms-no-sort", 1, [("torch.argsort(scores, descending=True).tolist()", "list(range(len(scores)))")]),
    ("nms", "nms-index-order", 0, [("torch.tensor(keep,", "torch.tensor(sorted(keep),")]),
    ("nms", "nms-returns-mask", 1, [("return torch.tensor(keep, dtype=torch.long)",
                                     "mask = torch.zeros(len(order), dtype=torch.bool)\nmask[keep] = True\nreturn mask")]),
    ("nms", None, 1, [("    if suppressed[i]:\n        continue\n", "")]),     # keeps suppressed boxes
    ("encode_boxes", "encode-log-inverted", 0, [("log(gw / pw), torch.log(gh / ph)", "log(pw / gw), torch.log(ph / gh)")]),
    ("encode_boxes", "encode-roles-swapped", 1, [("(proposals)\nt_ctr", "(targets)\nt_ctr"),
                                                 ("to_cxcywh(targets)\nreturn", "to_cxcywh(proposals)\nreturn")]),
    ("encode_boxes", "encode-plus-one", 0, [("px2 - px1, py2 - py1", "px2 - px1 + 1, py2 - py1 + 1"),
                                            ("gx2 - gx1, gy2 - gy1", "gx2 - gx1 + 1, gy2 - gy1 + 1")]),
    ("decode_boxes", "decode-no-exp", 0, [("pw * torch.exp(dw), ph * torch.exp(dh)", "pw * dw, ph * dh")]),
    ("decode_boxes", "decode-returns-cxcywh", 1, [("[ctr - wh / 2, ctr + wh / 2]", "[ctr, wh]")]),
    ("roi_pool", "roi-bankers-rounding", 0, [("round_away(v) for", "round(v) for")]),
    ("roi_pool", "roi-truncate", 0, [("round_away(v) for", "int(v) for")]),
    ("roi_pool", "roi-no-plus-one", 0, [("max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)", "max(x2 - x1, 1), max(y2 - y1, 1)")]),
    ("roi_pool", "roi-xy-swapped", 0, [("x1, y1, x2, y2 = [", "y1, x1, y2, x2 = [")]),
    ("roi_pool", "roi-batch-ignored", 0, [("b = int(rois[k, 0])", "b = 0")]),
    ("roi_pool", "roi-empty-bins-neg-inf", 1, [("return pooled.masked_fill(empty[:, None], 0.0)", "return pooled")]),
]
# a misspelt name as the function's first line (NameError), or a raise
TYPOS = {"scaled_dot_product_attention": "d_k = q.shape[-1]", "causal_mask": "size = N", "box_iou": "n = boxes.shape[0]",
         "multi_head_attention": "n = x.shape[0]", "nms": "n = box.shape[0]", "encode_boxes": "n = proposal.shape[0]",
         "decode_boxes": "n = delta.shape[0]", "roi_pool": "n_rois = roi.shape[0]"}
LOOP_ITEMS = ("nms", "roi_pool")
KINDS = ("correct", "mistake", "exception", "loop", "blank")


@dataclass(frozen=True)
class Student:
    name: str
    kind: str                    # one of KINDS
    fmt: str                     # ipynb, py, md
    target: str | None           # the item the mistake/exception/loop is in
    mistake: str | None          # the rubric's id of that mistake, when it is a known one
    affected: frozenset          # items that may fail with the target (they call it, or follow from it)


def _answers(rng: random.Random, kind: str):
    """{block: code}, target item, mistake id."""
    code = {b: rng.choice(s) for b, s in STYLES.items()}
    target = mistake = None
    if kind == "mistake":
        target, mistake, style, edits = rng.choice(MISTAKES)
        block = {"Q": "qkv", "attention": "score"}.get(target, target)
        code[block] = STYLES[block][style]
        for old, new in edits:
            assert old in code[block], (mistake, old)
            code[block] = code[block].replace(old, new)
    elif kind in ("exception", "loop"):
        target = rng.choice(LOOP_ITEMS if kind == "loop" else FUNCS)
        first = ("while True:\n    pass" if kind == "loop" else
                 rng.choice([TYPOS[target], 'raise ValueError("shape mismatch, fix later")']))
        pre, at, body = code[target].rpartition("@@\n")
        code[target] = pre + at + first + "\n" + body
    for f in rng.sample(FUNCS, 2) if rng.random() < 0.25 else ():        # a student's debugging prints
        pre, at, body = code[f].rpartition("@@\n")
        code[f] = pre + at + f'print("debug: {f}")\n' + body
    return code, target, mistake


def _affected(code: dict, target: str | None) -> frozenset:
    """Items that may fail with the target: the later Part A steps, or the functions that call it."""
    if target in DOWNSTREAM:
        return frozenset(DOWNSTREAM[target])
    return frozenset(f for f in FUNCS if target and re.search(rf"\b{target}\(", code[f].split("@@\n")[-1]))


def fill(text: str, code: dict | None, tag: str) -> str:
    """The starter's text (a whole script or one notebook cell) with its blanks filled."""
    text = text.replace("import torch\nimport torch.nn.functional as F\n# 假设",
                        f"# {tag}\nimport torch\nimport torch.nn.functional as F\n# 假设", 1)
    if code is None:
        return text
    for block, blank in PART_A.items():
        text = text.replace(blank, code[block])
    for f in FUNCS:
        i = text.find(f"def {f}(")
        if i < 0:
            continue
        pre, _, body = code[f].rpartition("@@\n")
        j = text.index("raise NotImplementedError", i)
        text = text[:j] + textwrap.indent(body.strip("\n"), "    ")[4:] + text[j + len("raise NotImplementedError"):]
        text = text[:i] + (pre.strip("\n") + "\n\n\n" if pre.strip() else "") + text[i:]
    return text


def _written() -> list[str]:
    nb = json.loads((REF / "solution.ipynb").read_text(encoding="utf-8"))
    return [s for c in nb["cells"] if (s := "".join(c["source"])).startswith("**答 / Answer:**")]


def _notebook(code, tag, answers) -> str:
    nb = json.loads((REF / "starter.ipynb").read_text(encoding="utf-8"))
    written = iter(answers)
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code":
            cell["source"] = fill(src, code, tag)
        elif code is not None and src.strip() == "**答 / Answer:**":
            cell["source"] = next(written)
    return json.dumps(nb, ensure_ascii=False, indent=1)


def _script(code, tag, answers) -> str:
    parts = fill((REF / "starter.py").read_text(encoding="utf-8"), code, tag).split("# **答 / Answer:**\n#\n")
    if code is None:
        return "# **答 / Answer:**\n#\n".join(parts)
    assert len(parts) == len(answers) + 1
    return parts[0] + "".join("# " + a.replace("\n", "\n# ").replace("# \n", "#\n") + "\n" + p
                              for a, p in zip(answers, parts[1:]))


def _sheet(code, tag, rng) -> str:
    """Like the bundled 2.md (an answer sheet exported from a Markdown editor), with the functions too."""
    starter = (REF / "starter.py").read_text(encoding="utf-8")
    cells = [fill(c.strip("\n"), code, tag) for c in re.split(r"(?m)^# %%$", starter)[1:]]
    cells = [c.split("\n# %% [markdown]")[0].strip("\n") for c in cells]
    assert len(cells) == 12, len(cells)
    def fence(c):               # editors often drop the language tag
        return f"```{rng.choice(['', 'python'])}\n{c}\n```"
    parts = SHEET.read_text(encoding="utf-8").split("```")
    parts[1], parts[3] = "\n" + cells[0] + "\n", "python\n" + cells[1] + "\n"
    text = f"{tag}\n\n" + "```".join(parts)
    text = text.replace("\nΞ\n", "\n" + "\n\n".join(map(fence, cells[2:6])) + "\n\nΞ\n", 1)
    return text + "\n\n" + "\n\n".join(map(fence, cells[6:])) + "\n"


def make_class(dest: Path, n: int, seed: int, shares: dict[str, float],
               formats=(("ipynb", 0.5), ("py", 0.3), ("md", 0.2))) -> list[Student]:
    """Write n student folders into dest; shares: the fraction of each non-correct kind."""
    rng = random.Random(seed)
    counts = {k: round(n * shares.get(k, 0.0)) for k in KINDS[1:]}
    kinds = [k for k, c in counts.items() for _ in range(c)]
    assert len(kinds) <= n, counts
    kinds += ["correct"] * (n - len(kinds))
    rng.shuffle(kinds)
    answers = _written()
    students = []
    for k, kind in enumerate(kinds):
        fmt = rng.choices([f for f, _ in formats], [w for _, w in formats])[0]
        if kind == "blank" and fmt == "md":
            fmt = rng.choice(["ipynb", "py"])
        code, target, mistake = _answers(rng, kind) if kind != "blank" else (None, None, None)
        tag = f"学号 2024{k:05d} (seed {seed}, {kind})"
        name = f"s{k:04d}_{kind}"
        (dest / name).mkdir(parents=True)
        if fmt == "ipynb":
            (dest / name / "hw2.ipynb").write_text(_notebook(code, tag, answers), encoding="utf-8")
        elif fmt == "py":
            (dest / name / "hw2.py").write_text(_script(code, tag, answers), encoding="utf-8")
        else:
            (dest / name / "2.md").write_text(_sheet(code, tag, rng), encoding="utf-8")
        students.append(Student(name, kind, fmt, target, mistake, _affected(code, target) if code else frozenset()))
    return students
