"""`linearnet chapter` leaves one self-contained HTML page (issue 14, item 3)."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.image import imread

from linearnet.chapter import CHAPTER_NUMBERS, run_chapter
from linearnet.chapter_page import Z, build_page, linreg_allowance, passes
from linearnet.evaluation import plots

PNG = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects image sources, captions, table cells (per table) and any external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.images, self.captions, self.tables, self.external = [], [], [], []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        if tag == "table":
            self.tables.append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag == "figcaption":
            self._caption = []
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("data:"):
                self.external.append(a[key])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "figcaption":
            self.captions.append("".join(self._caption).strip())
            self._caption = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._caption is not None:
            self._caption.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _check_images(page: _Page) -> None:
    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        raw = base64.b64decode(src[len(prefix):], validate=True)
        assert raw.startswith(PNG)
        img = imread(io.BytesIO(raw), format="png")
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50 and np.ptp(img) > 0


def test_chapter_writes_a_self_contained_page(tmp_path, capsys):
    out = tmp_path / "chapter"
    rows = run_chapter(out, softmax=False, log=print)
    printed = capsys.readouterr().out
    page_path = out / "index.html"
    assert printed.rstrip().endswith(f"page: {page_path}")
    page = _parse(page_path.read_text())
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(page.images) == len(pngs) >= 3  # normal.png and the SGD runs' loss curves
    assert sorted(c.split(":")[0] for c in page.captions) == pngs
    _check_images(page)
    assert not page.external
    comparison, timings = page.tables
    assert all(cell for cell in comparison + timings)  # every cell filled
    marks = comparison[5:][4::5]  # the mark column, under a five-cell header
    assert len(marks) == 3 * len(rows) and set(marks) <= {"pass", "FAIL", "n/a"}
    assert marks[:3] == ["pass"] * 3  # the scratch run meets the chapter's numbers
    assert marks == ["pass"] * 12  # and every linreg run its statistical pass marks
    assert any(cell.startswith("whole chapter") for cell in timings)
    assert f"linearnet chapter --out {out} --skip-softmax" in page_path.read_text()


def test_page_takes_in_new_rows_metrics_and_notes(tmp_path):
    """Rows, metrics and figures are discovered, so an added implementation or table note shows up."""
    run = tmp_path / "linreg-analytic"
    run.mkdir()
    plots.save_figure(plots.normal_figure(), run / "residuals.png")
    rows = [{"experiment": "linreg analytic", "ours_loss": 4.8e-5, "ours_w_err": 1e-4, "ours_extra": 3.0,
             "seconds": 0.01},
            {"experiment": "softmax scratch", "ours_train_loss": 0.44, "ours_train_acc": 0.85,
             "ours_test_acc": 0.80, "train_seconds": 1.5, "seconds": 2.0}]
    reference = dict(CHAPTER_NUMBERS, **{"linreg analytic": {"loss": 0.000049, "w_err": 0.0005}})
    text = build_page(tmp_path, rows, reference, "table\n* a footnote under the table",
                      {"whole chapter": 3.0, "vectorized": 0.000123}, "linearnet chapter")
    page = _parse(text)
    comparison, timings = page.tables
    assert all(comparison) and all(timings)
    assert "linreg analytic" in comparison and "extra" in comparison and "residuals" in " ".join(page.captions)
    assert comparison[5:][4::5].count("FAIL") == 1  # softmax test acc 0.80 vs the chapter's 0.836
    assert "* a footnote under the table" in text
    assert "softmax scratch: train seconds" in timings
    assert "0.000123" in timings and "0.000" not in timings  # a tiny time keeps its digits
    rows[0]["ours_loss"] = 4.65648e-05
    comparison = _parse(build_page(tmp_path, rows, reference, "t", {"x": 1.0}, "c")).tables[0]
    assert "4.656e-05" in comparison and "4.65648e-05" not in comparison  # ours to 4 digits, as the chapter
    _check_images(page)


def test_pass_marks():
    assert passes("test_acc", 0.836, 0.83) == "pass" and passes("test_acc", 0.836, 0.82) == "FAIL"
    assert passes("loss", 0.000049, 0.00005) == "pass" and passes("train_loss", 0.447, 0.5) == "FAIL"
    assert passes("loss", None, 1.0) == "n/a"
    # no absolute slack: an error 8.7 times the chapter's fails unless the experiment's allowance covers it
    assert passes("b_err", 0.0001, 0.00087) == "FAIL"
    assert passes("b_err", 0.0001, 0.00087, allowed=0.001) == "pass"
    assert passes("b_err", None, 0.0011, allowed=0.001) == "FAIL"


def test_linreg_allowance_is_the_standard_error_of_the_fit():
    exact = linreg_allowance(0.01, 1000, 2)
    assert exact["w_err"] == exact["b_err"] == pytest.approx(Z * 0.01 / 1000 ** 0.5)  # ~3.2e-4 per SE
    assert exact["loss"] == pytest.approx(0.01 ** 2 / 2 * (1 + Z * (2 / 1000) ** 0.5) + 3 * exact["w_err"] ** 2 / 2)
    sgd = linreg_allowance(0.01, 1000, 2, lr=0.03, batch_size=10, steps=300, start=4.2)
    assert sgd["w_err"] == pytest.approx(Z * (1e-7 + 0.03e-4 / 20) ** 0.5 + 4.2 * 0.97 ** 300)


def test_a_deliberately_wrong_parameter_fails_its_mark(tmp_path):
    from linearnet import TrainConfig, train_run
    from linearnet.chapter import _linreg_allowed
    from linearnet.chapter_page import comparison

    for impl in ("scratch", "closed-form"):
        cfg = TrainConfig.create("linreg", impl=impl, progress=False)
        m = train_run(cfg, tmp_path / impl, log=lambda *a, **k: None, live=False).metrics
        row = {"experiment": f"linreg {impl}", "ours_w_err": max(abs(v) for v in m["w_error"]),
               "ours_b_err": abs(m["b_error"]), "allowed": _linreg_allowed(cfg)}
        assert [c["mark"] for c in comparison([row], CHAPTER_NUMBERS)] == ["pass", "pass"]
        row["ours_b_err"] = abs(m["b_error"] + 0.003)  # b off by 0.003: ten standard errors
        assert [c["mark"] for c in comparison([row], CHAPTER_NUMBERS)] == ["pass", "FAIL"]
