"""The run folder's life: checked inputs first, built in R.partial, put in place only when finished.

A failed command never destroys a finished run nor leaves anything that looks like one; an
interrupted run keeps what --resume needs and is found from the name the user gave.
"""

from __future__ import annotations

import json

import pytest
import torch

from linearnet.persist import load_model

FAST = ["--no-progress", "--num-examples", "200", "--epochs", "3"]


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def good_run(cli, tmp_path):
    run = tmp_path / "good"
    assert cli("train", "linreg", *FAST, "--out", run)[0] == 0
    return run, _snapshot(run)


def _bad_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1,2\nabc,3\n4,5\n")
    return path


@pytest.mark.parametrize("overwrite", [False, True])
def test_bad_csv_over_a_good_run_leaves_it_intact(cli, tmp_path, good_run, overwrite):
    run, before = good_run
    flags = ["--overwrite"] if overwrite else []
    code, _, err = cli("train", "linreg", "--no-progress", "--data", _bad_csv(tmp_path), "--target", "y",
                       "--out", run, *flags)
    assert code == 2 and ("'abc'" if overwrite else "already holds a run") in err
    assert _snapshot(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good"]


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("where", ["out", "staging"])
def test_a_folder_that_is_not_a_run_is_never_replaced(cli, tmp_path, overwrite, where):
    # --out naming the user's own folder (or its .partial sibling): refused even with --overwrite, nothing touched
    target = tmp_path / "precious"
    folder = target if where == "out" else tmp_path / "precious.partial"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    code, _, err = cli("train", "linreg", *FAST, "--out", target, *(["--overwrite"] if overwrite else []))
    assert code == 2 and "no linearnet run" in err and "choose another --out" in err
    assert [p.name for p in folder.iterdir()] == ["notes.txt"] and (folder / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]


def test_divergence_with_overwrite_keeps_the_good_run_and_leaves_no_staging(cli, tmp_path, good_run):
    run, before = good_run
    code, _, err = cli("train", "linreg", *FAST, "--lr", "1e6", "--out", run, "--overwrite")
    assert code == 2 and "diverged" in err
    assert _snapshot(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


def test_streamed_closed_form_failure_keeps_the_good_run(cli, tmp_path, good_run):
    run, before = good_run
    code, _, err = cli("train", "linreg", "--impl", "closed-form", "--chunk-rows", "2", "--data",
                       _bad_csv(tmp_path), "--target", "y", "--out", run, "--overwrite", "--no-progress")
    assert code == 2 and "not a number" in err
    assert _snapshot(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good"]


def test_streamed_closed_form_replaces_a_run_only_when_done(cli, tmp_path, good_run, house_csv):
    run, before = good_run
    code, out, err = cli("train", "linreg", "--impl", "closed-form", "--chunk-rows", "50", "--data", house_csv,
                         "--target", "price", "--out", run, "--overwrite", "--no-progress")
    assert code == 0, err
    assert load_model(run).meta["feature_names"] == ["area", "age"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good", "houses.csv"]


def test_six_failed_commands_leave_no_folder(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    files = {"text.csv": "x,y\n1,2\nabc,3\n4,5\n", "nan.csv": "x,y\n1,2\nnan,3\n4,5\n",
             "nocol.csv": "x,z\n1,2\n3,4\n", "few.csv": "a,b,c,y\n1,2,3,4\n5,6,7,8\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    commands = [[*FAST, "--data", name, "--target", "y"] for name in files]
    commands += [[*FAST, "--device", "cuda"], [*FAST, "--lr", "1e6"]]
    for args in commands:
        code, _, err = cli("train", "linreg", *args)
        assert code == 2 and "Traceback" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)  # no runs/ folder at all


def test_after_a_failure_the_same_out_works_without_overwrite(cli, tmp_path):
    run = tmp_path / "r"
    assert cli("train", "linreg", *FAST, "--lr", "1e6", "--out", run)[0] == 2
    code, _, err = cli("train", "linreg", *FAST, "--out", run)
    assert code == 0, err
    assert (run / "model.safetensors").is_file()


def test_a_new_run_over_an_interrupted_one_is_refused_without_overwrite(cli, tmp_path):
    partial = tmp_path / "r.partial"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    code, _, err = cli("train", "linreg", *FAST, "--out", tmp_path / "r")
    assert code == 2 and f"--resume {tmp_path / 'r'}" in err and "--overwrite" in err
    assert cli("train", "linreg", *FAST, "--out", tmp_path / "r", "--overwrite")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def _interrupt_after(monkeypatch, epochs: int):
    """Ctrl-C right after the checkpoint of epoch ``epochs`` is written."""
    import linearnet.training.run as run_module

    real = run_module.save_checkpoint

    def save_then_interrupt(run_dir, params, optimizer, epoch, history, *rest, **kw):
        path = real(run_dir, params, optimizer, epoch, history, *rest, **kw)
        if epoch == epochs:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(run_module, "save_checkpoint", save_then_interrupt)


@pytest.mark.parametrize("resume_name", ["r", "r.partial"])
def test_interrupted_run_keeps_history_and_resumes_to_the_same_model(cli, tmp_path, monkeypatch, resume_name):
    args = ["train", "linreg", "--no-progress", "--num-examples", "300", "--epochs", "5", "--checkpoint-every", "1"]
    assert cli(*args, "--out", tmp_path / "ref")[0] == 0
    _interrupt_after(monkeypatch, 2)
    run = tmp_path / "r"
    code, _, err = cli(*args, "--out", run)
    assert code == 130 and f"--resume {run}" in err
    partial = tmp_path / "r.partial"
    assert not run.exists()
    assert {"config.json", "checkpoint.safetensors", "history.csv"} <= {p.name for p in partial.iterdir()}
    assert not (partial / "model.safetensors").exists()
    lines = (partial / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2"]  # written as the epochs completed
    monkeypatch.undo()
    code, out, err = cli("train", "linreg", "--no-progress", "--resume", tmp_path / resume_name)
    assert code == 0, err
    assert "after epoch 2 of 5" in out
    got, ref = load_model(run), load_model(tmp_path / "ref")
    assert torch.equal(got.weight, ref.weight) and torch.equal(got.bias, ref.bias)
    assert len((run / "history.csv").read_text().splitlines()) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "ref"]


def test_resuming_a_finished_run_for_more_epochs_fails_safely(cli, tmp_path, monkeypatch):
    args = ["train", "linreg", "--no-progress", "--num-examples", "300", "--checkpoint-every", "1"]
    run = tmp_path / "r"
    assert cli(*args, "--epochs", "2", "--out", run)[0] == 0
    before = _snapshot(run)
    _interrupt_after(monkeypatch, 3)
    assert cli("train", "linreg", "--no-progress", "--resume", run, "--epochs", "4")[0] == 130
    assert _snapshot(run) == before  # the finished run is untouched; the continuation is in r.partial
    monkeypatch.undo()
    assert cli("train", "linreg", "--no-progress", "--resume", run, "--epochs", "4")[0] == 0
    assert cli(*args, "--epochs", "4", "--out", tmp_path / "long")[0] == 0
    assert torch.equal(load_model(run).weight, load_model(tmp_path / "long").weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long", "r"]


def test_a_failed_final_move_puts_the_previous_run_back(cli, tmp_path, good_run, monkeypatch):
    import errno
    import os

    run, before = good_run
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".partial") and str(dst) == str(run):
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code, _, err = cli("train", "linreg", *FAST, "--seed", "3", "--out", run, "--overwrite")
    assert code == 2 and "Input/output error" in err and "Traceback" not in err
    assert _snapshot(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


def test_resume_refuses_settings_that_differ_from_the_run_and_accepts_the_same_ones(cli, tmp_path):
    run = tmp_path / "r"
    assert cli("train", "linreg", *FAST, "--lr", "0.03", "--out", run)[0] == 0
    before = (run / "config.json").read_text()
    code, _, err = cli("train", "linreg", "--no-progress", "--resume", run, "--epochs", "5", "--lr", "0.5",
                       "--batch-size", "64")
    assert code == 2 and "--lr, --batch-size would change" in err and "Traceback" not in err
    assert (run / "config.json").read_text() == before  # nothing touched
    # the original command repeated with --resume (and more epochs) is fine: its values are the run's own
    code, _, err = cli("train", "linreg", *FAST[:-1], "5", "--lr", "0.03", "--resume", run)
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["epochs"] == 5
