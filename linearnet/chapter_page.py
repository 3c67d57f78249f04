"""The chapter's results as one self-contained HTML page: table, figures, timings, command.

Built generically from what the chapter produced: every row of the comparison (each ``ours_<metric>``
beside the chapter's ``<metric>``), every PNG in the output folder and its run folders, and the
printed table verbatim (so notes added to it appear here too). Figures are embedded as base64 PNG,
so the page needs no network and no other file.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from .io import write_text

PAGE_NAME = "index.html"

# What each figure file shows; other files are captioned by their name.
CAPTIONS = {
    "normal.png": "Normal densities for three (mean, std) pairs, the chapter's figure.",
    "loss.png": "Training loss per epoch (log scale).",
    "curves.png": "Training loss, training accuracy and test accuracy per epoch.",
    "confusion.png": "Confusion matrix on the test set: rows true class, columns predicted, with counts.",
    "weights.png": "Each class's weight vector drawn as a 28 x 28 template (red positive, blue negative).",
    "predictions.png": "Test images titled with the true label over the predicted one.",
}

# A pass mark: an accuracy may be 0.01 below the chapter's; a loss or error may exceed it by 5%, or
# stay within the statistical allowance of the experiment where one is known (linear regression).
ACC_SLACK, REL_SLACK = 0.01, 0.05

# Linear regression's errors are random: with label noise of std sigma and n standard-normal examples
# (X^T X ~ n I), even the exact least-squares fit misses each coefficient by sigma / sqrt(n) (one
# standard error), and SGD at a constant step lr with batches of B adds a wobble around that fit of
# variance lr sigma^2 / (2 B) per coordinate, and has not quite forgotten where it started: each step
# shrinks the distance to the fit by (1 - lr). The chapter's printed errors are one draw of these, so
# an error passes within Z standard deviations (plus what is left of the start): a correct fit all but
# never fails a mark (over seeds 0-29 of each implementation the largest error was 0.76 of its mark),
# while an error of a few times the noise fails it.
Z = 4.0


def linreg_allowance(noise: float, n: int, d: int, lr: float | None = None, batch_size: int | None = None,
                     steps: int = 0, start: float = 0.0) -> dict[str, float]:
    """Largest |w err|, |b err| and final (halved squared) loss a correct fit reaches, all but rarely.

    ``lr`` and ``batch_size`` are those of SGD on the halved loss (None: the exact least-squares fit),
    ``steps`` its number of steps from parameters at most ``start`` from the true ones.
    The loss allows the noise floor sigma^2 / 2 with Z sampling deviations (relative sqrt(2 / n)) plus
    what every coordinate that far off adds.
    """
    var = noise ** 2 / n + (lr * noise ** 2 / (2 * batch_size) if lr else 0.0)
    err = Z * math.sqrt(var) + (start * (1 - lr) ** steps if lr else 0.0)
    return {"w_err": err, "b_err": err,
            "loss": noise ** 2 / 2 * (1 + Z * math.sqrt(2 / n)) + (d + 1) * err ** 2 / 2}


def passes(metric: str, theirs: float | None, ours: float | None, allowed: float | None = None) -> str:
    """'pass', 'FAIL', or 'n/a' when neither the chapter nor ``allowed`` gives a bound."""
    if ours is None or (theirs is None and allowed is None):
        return "n/a"
    if "acc" in metric:
        return "pass" if ours >= theirs - ACC_SLACK else "FAIL"
    if allowed is not None:
        return "pass" if ours <= max(allowed, theirs or 0.0) else "FAIL"
    return "pass" if ours <= theirs * (1 + REL_SLACK) else "FAIL"


def comparison(rows: Sequence[Mapping], reference: Mapping[str, Mapping]) -> list[dict]:
    """One dict per (experiment, metric): every ``ours_<metric>`` of a row beside the chapter's number."""
    out = []
    for row in rows:
        ref = reference.get(row["experiment"], {})
        for key, ours in row.items():
            if key.startswith("ours_"):
                metric = key[len("ours_"):]
                theirs = ref.get(metric)
                allowed = row.get("allowed", {}).get(metric)
                out.append({"experiment": row["experiment"], "metric": metric.replace("_", " "),
                            "chapter": theirs, "ours": ours, "mark": passes(metric, theirs, ours, allowed)})
    return out


def figures(out: Path) -> list[tuple[str, Path]]:
    """(section, PNG path) for every figure: the folder's own first, then each run folder's, sorted."""
    found = [("chapter", p) for p in sorted(out.glob("*.png"))]
    for run in sorted(d for d in out.iterdir() if d.is_dir()):
        found += [(run.name, p) for p in sorted(run.glob("*.png"))]
    return found


def _num(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.6g}"
    return html.escape(str(v))


def _ours(v):
    """Our number to 4 significant digits, about as many as the chapter prints (0.8475, 4.656e-05)."""
    return f"{v:.4g}" if isinstance(v, float) else v


def _table(header: Sequence[str], body: Sequence[Sequence]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = ["<tr>" + "".join(f'<td class="{html.escape(str(c)) if c in ("pass", "FAIL") else ""}">{_num(c)}</td>'
                              for c in r) + "</tr>" for r in body]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def build_page(out: Path, rows: Sequence[Mapping], reference: Mapping[str, Mapping], table_text: str,
               timings: Mapping[str, float], command: str) -> str:
    """The page's HTML (see the module docstring)."""
    cmp = comparison(rows, reference)
    table = _table(["experiment", "metric", "chapter", "ours", "mark"],
                   [[c["experiment"], c["metric"], c["chapter"], _ours(c["ours"]), c["mark"]] for c in cmp])
    timing_rows = [[k, f"{v:.3g}"] for k, v in timings.items()]  # 3 digits: 4.9 s and 0.000123 s alike
    for row in rows:
        timing_rows += [[f"{row['experiment']}: {k.replace('_', ' ')}", f"{v:.3g}"]
                        for k, v in row.items() if k.endswith("seconds") and isinstance(v, (int, float))]
    parts = ["<h1>Linear neural networks: the chapter, run by linearnet</h1>",
             f"<p>Reproduce with: <code>{html.escape(command)}</code></p>",
             "<h2>The chapter's numbers beside ours</h2>", table,
             f"<p class=note>A pass mark: an accuracy at most {ACC_SLACK} below the chapter's, a softmax loss at "
             f"most {REL_SLACK:.0%} above it. Linear regression's errors come from the noise in its data, so "
             f"the chapter's numbers are one draw: an error passes within {Z} standard deviations of the "
             "estimate (noise / sqrt(n) for the exact fit; SGD adds lr noise^2 / (2 batch) to the variance), "
             "a loss within the noise floor noise^2 / 2 plus what such errors and sampling add. n/a where "
             "neither gives a bound.</p>",
             "<h3>As printed</h3>", f"<pre>{html.escape(table_text)}</pre>",
             "<h2>Timings (seconds)</h2>", _table(["what", "seconds"], timing_rows), "<h2>Figures</h2>"]
    section = None
    for name, path in figures(out):
        if name != section:
            parts.append(f"<h3>{html.escape(name)}</h3>")
            section = name
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = CAPTIONS.get(path.name, path.stem.replace("_", " "))
        rel = path.relative_to(out).as_posix()
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(rel)}">'
                     f"<figcaption>{html.escape(rel)}: {html.escape(caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
             "td.pass{color:#060}td.FAIL{color:#b00;font-weight:bold}figure{margin:1em 0}"
             "img{max-width:100%}figcaption{font-size:.9em;color:#444}")
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>linearnet: the chapter</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_page(out: Path, rows: Sequence[Mapping], reference: Mapping[str, Mapping], table_text: str,
               timings: Mapping[str, float], command: str) -> Path:
    """Write ``out/index.html`` atomically and return its path."""
    path = out / PAGE_NAME
    write_text(path, build_page(out, rows, reference, table_text, timings, command))
    return path
