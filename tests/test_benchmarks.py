"""The benchmark harness runs (quick mode) so it never rots; its correctness figures are checked, not its times."""

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
    assert res["closed_form"]["max_coef_error"] < 1e-8
    acc = res["softmax"]["accuracy"]
    assert abs(acc["linearnet scratch"] - acc["per-sample pipeline"]) < 0.01  # same batches, same model
    assert all(0.7 < v <= 1 for v in res["sklearn"]["accuracy"].values())
