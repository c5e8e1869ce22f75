"""Feedback end to end: each sample's golden record (statuses, points, messages and hints in both
languages) under the real bwrap sandbox, the HTML page in real headless Chromium, and what the
student view must never show."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import torch

from grader.feedback import _num, render_feedback, write_feedback
from helpers import SAMPLE_NAMES, golden_diff, golden_record

SEED = "000_be4a6993b089033a"
CHROMIUM = Path("/usr/bin/chromium")

# Hints (English) each sample's failing items must carry: known mistakes and error diagnoses.
HINTS = {
    SEED: {"Q": "did you mean `W_Q`? names cannot contain spaces",
           "score": "`W_Q` is undefined because an earlier error (SyntaxError, cell 2, line 10)",
           "output": "`attention` is undefined because an earlier error (NameError, cell 4, line 2)"},
    "004_attention_mistakes": {"attention": "softmax was taken over dim 0", "scaled_dot_product_attention": "filled with 0",
                               "multi_head_attention": "heads were split the wrong way"},
    "005_detection_mistakes": {"box_iou": "+1", "nms": "IoU >= threshold", "encode_boxes": "ratio in dw, dh is inverted",
                               "roi_pool": "rounded half to even"},
    "007_partly_broken": {"scaled_dot_product_attention": "did you mean `attn`?"},
    "008_no_scale_script": {"score": "not divided by sqrt(d)", "scaled_dot_product_attention": "not divided by sqrt(d)"},
}


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_golden_record_and_hints(bwrap_samples, golden, name):
    r = bwrap_samples[name]
    record = golden_record(r)       # statuses, points, and messages and hints in both languages
    expected = golden.expected(name, record)
    assert record == expected, golden_diff(record, expected)
    items = {i.id: i for i in r.items}
    for item_id, fragment in HINTS.get(name, {}).items():
        hint = items[item_id].hint
        assert hint is not None and fragment in hint.en, (item_id, hint)
        assert hint.zh and hint.zh != hint.en
    for i in r.items:   # a passing item without a known mistake has nothing to hint at
        if i.status == "pass" and i.mistake is None:
            assert i.hint is None, i.id


def test_seed_sheet_page_names_the_line_and_its_cost(bwrap_samples):
    html = render_feedback(bwrap_samples[SEED], "en", "student")
    broke = html[html.index('id="what-broke"'):html.index('id="part-A"')]
    assert "cell 2, line 10" in broke and "W Q = torch.randn(4, 4)" in broke and "SyntaxError" in broke
    assert '<span class="srcline caret">  ^</span>' in broke            # the caret under `Q`, column 3
    assert "did you mean <code>W_Q</code>? names cannot contain spaces" in broke
    assert "<strong>6</strong> points lost" in broke
    for item in ("(Q)", "(K)", "(V)", "(score)", "(attention)", "(output)"):
        assert item in broke
    # The rest is graded: the written answers are shown as submitted, for the instructor's review.
    assert "awaiting the instructor&#39;s review" in html and "梯度裁剪" in html
    zh = render_feedback(bwrap_samples[SEED], "zh", "student")
    assert "你是想写 <code>W_Q</code> 吗？变量名中不能有空格" in zh and "出错的地方" in zh


def test_student_view_hides_hidden_values_and_reference_code(bwrap_samples, bwrap_grader):
    ref = bwrap_grader.reference
    for name in ("004_attention_mistakes", "005_detection_mistakes", "008_no_scale_script"):
        r = bwrap_samples[name]
        html = render_feedback(r, "en", "student")
        public = _public_numbers(r)     # a hidden case may share a value with a public one (same fixed X)
        # Numbers of hidden cases' expected values never reach the page.
        for item_id in ("scaled_dot_product_attention", "box_iou", "encode_boxes"):
            item = bwrap_grader.rubric.item(item_id)
            hidden = [c for c in ref.cases(item) if not c.public][:3]
            for case in hidden:
                expected = ref.expected(item, case)
                values = expected if isinstance(expected, tuple) else (expected,)
                numbers = {_num(float(x)) for v in values for x in v.flatten().tolist()}
                numbers = {n for n in numbers if len(n.lstrip("-").replace(".", "").lstrip("0")) >= 4} - public
                leaked = [n for n in numbers if re.search(rf"(?<![\d.\-]){re.escape(n)}(?![\de])", html)]
                assert not leaked, (name, item_id, case.id, leaked[:5])
        # Hidden case messages (which quote expected numbers) are instructor-only.
        for item in r.items:
            for c in item.cases:
                if not c.public and not c.passed and "expected" in c.message.en:
                    assert c.message.en not in html
        # Hidden runs' printed output stays off the student page.
        for cell in r.run.cells:
            if cell.run != "public" and cell.stdout.strip():
                assert cell.stdout.strip() not in html
        # Never the reference's code.
        for line in ("corners = round_half_away_from_zero(rois[:, 1:] * spatial_scale).long()",
                     "The product and the rounding happen in the features' dtype"):
            assert line not in html
    instructor = render_feedback(bwrap_samples["004_attention_mistakes"], "en", "instructor")
    assert "softmax-dim0" in instructor and "Cell runs" in instructor


def _public_numbers(result) -> set[str]:
    out = set()

    def walk(v):
        if isinstance(v, torch.Tensor):
            out.update(_num(float(x)) for x in v.flatten().tolist())
        elif isinstance(v, (tuple, list)):
            for x in v:
                walk(x)
    for item in result.items:
        for c in item.cases:
            if c.public:
                walk((c.expected, c.got, c.inputs))
    return out


def test_every_fixed_string_has_both_languages():
    from grader.feedback import STATUS, T
    for text in list(T.values()) + list(STATUS.values()):
        assert text.zh and text.en


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (CI installs it)")
def test_chinese_text_is_drawn_with_a_cjk_font_not_boxes(bwrap_samples, tmp_path):
    """The fonts the browser really used for the page's Chinese heading and summary (DevTools'
    CSS.getPlatformFontsForNode): on a fresh Debian machine without a CJK font every glyph of it
    is a box; scripts/setup.sh installs one and the page's font stack names it."""
    from browser import Browser
    page = tmp_path / "zh.html"
    write_feedback(bwrap_samples["004_attention_mistakes"], page, "zh", "student")
    with Browser(tmp_path / "profile") as browser:
        browser.open(page.as_uri())
        fonts = browser.fonts_for("h1")
    heading = "作业反馈"        # the heading's Chinese glyphs: drawn from a CJK family, not as boxes
    cjk = {f: n for f, n in fonts.items() if "CJK" in f or "WenQuanYi" in f or "Source Han" in f}
    assert cjk and sum(cjk.values()) >= len(heading), fonts


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (CI installs it)")
@pytest.mark.parametrize("name", ["004_attention_mistakes", SEED])
def test_page_renders_in_headless_chromium(bwrap_samples, tmp_path, name):
    page = tmp_path / f"{name}.html"
    write_feedback(bwrap_samples[name], page, "en", "student")
    # Console messages (errors included) go to stderr with --enable-logging=stderr.
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert 'id="score"' in dom and f"Score: {bwrap_samples[name].score:g} / 40" in dom
    assert "<script" not in dom and "http://" not in dom.replace('xmlns="http://www.w3.org/2000/svg"', "")
    if name == SEED:
        assert "W Q = torch.randn(4, 4)" in dom and "what-broke" in dom
    else:
        assert dom.count('class="heatmap heatmap-') >= 3            # yours, reference, difference
        assert 'class="boxes"' in dom and 'class="box kept"' in dom
    shot = tmp_path / "page.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=420,900",   # a phone's width
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_the_page_shows_the_diagnosis_the_record_holds_and_works_out_none_itself(bwrap_samples):
    """Presentation is a pure function of the record: replace what score worked out (a case's
    diagnosis, an error's cause hint) and the page says the replacement."""
    import dataclasses
    from grader.model import Text
    result = bwrap_samples["004_attention_mistakes"]
    diagnosed = [(i, c) for i in result.items for c in i.cases if c.diagnosis is not None]
    assert diagnosed, "004 has a failing public case with a diagnosis"
    item, case = diagnosed[0]
    marked = dataclasses.replace(case, diagnosis=Text("记录里的诊断", "the diagnosis in the record"))
    items = tuple(dataclasses.replace(i, cases=tuple(marked if c is case else c for c in i.cases)) if i is item else i
                  for i in result.items)
    changed = dataclasses.replace(result, items=items)
    assert "the diagnosis in the record" in render_feedback(changed, "en", "student")
    assert "记录里的诊断" in render_feedback(changed, "zh", "student")
    assert "the diagnosis in the record" not in render_feedback(result, "en", "student")
