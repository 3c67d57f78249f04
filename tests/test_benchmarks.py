"""The benchmark harness runs (quick mode) so it never rots; its correctness figures are checked, never its times."""

from __future__ import annotations

import json

from benchmarks.__main__ import main


def test_quick_benchmarks_run_and_agree(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| linearnet Batches |" in text and "speed-up vs" in text
    res = json.loads(out.read_text())
    assert res["machine"]["cores"] >= 1
    errors = res["closed_form_errors"]
    assert errors["cond1"]["linearnet"] < 1e-10
    assert errors["cond1e+10"]["linearnet"] < 1e-5 < errors["cond1e+10"]["normal-equations"]
    acc = res["softmax"]["accuracy"]
    assert acc["linearnet scratch"] == acc["linearnet concise"]  # identical models and batches
    assert abs(acc["linearnet analytic"] - acc["linearnet scratch"]) < 0.002  # same steps, other rounding
    assert "linearnet analytic" in res["softmax"] and res["softmax"]["linearnet analytic"]["x_floor"] > 0
    gaps = res["linreg_sgd"]["parameter_gap"]  # one epoch of each implementation ends at scratch's parameters
    assert set(gaps) == {"scratch", "concise", "analytic"} and max(gaps.values()) < 1e-5
    assert abs(acc["linearnet scratch"] - acc["chapter per-sample pipeline (concise model)"]) < 0.01
    assert all(0.7 < v <= 1 for v in res["sklearn"]["accuracy"].values())
    assert len(res["scaling"]["epoch_seconds"]) == len(res["scaling"]["batch_sizes"])
    # the README's streaming claim: memory independent of the row count. A 5x larger file must not need
    # more than a quarter more memory (memory growing with the rows would show ~5x); the quick files are
    # small enough that the libraries' own memory dominates, so the full-size 10% target is not asserted here
    runs = res["streaming"]["runs"]
    assert runs[1]["rows"] == 5 * runs[0]["rows"] and res["streaming"]["peak_ratio"] < 1.25
    assert max(r["peak_rss_mb"] for r in runs) < 500
    assert "time / bare concise recipe (targets: scratch <= 1.0x, concise <= 1.1x)" in text
    assert set(res["softmax"]["x_bare_concise_recipe"]) == {"linearnet scratch", "linearnet concise"}
    assert "overhead beyond start-up + load + training" in text and res["cli_end_to_end"]["epochs"] == 2
