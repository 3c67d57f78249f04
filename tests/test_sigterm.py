"""SIGTERM stops a run as Ctrl-C does: checkpoint kept, resume command printed, exit 143 (issue 14, item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linearnet.training.checkpoint import CHECKPOINT_NAME, deferred_sigint, load_checkpoint

TRAIN = ["-m", "linearnet", "train", "linreg", "--num-examples", "50000", "--epochs", "50",
         "--checkpoint-every", "1", "--no-progress"]


def _checkpoint_dir(run: Path) -> Path | None:
    """Where the run keeps its checkpoint: the run folder, or its staging sibling ``<run>.partial``."""
    for d in (run, run.with_name(run.name + ".partial")):
        if (d / CHECKPOINT_NAME).exists():
            return d
    return None


def _wait_for_checkpoint(run: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while _checkpoint_dir(run) is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert _checkpoint_dir(run) is not None, "no checkpoint appeared"


def test_sigterm_keeps_checkpoint_prints_resume_and_exits_143(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, *TRAIN, "--out", str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(run, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert f"--resume {run}" in err and "SIGTERM" in err and "Traceback" not in err
    assert load_checkpoint(_checkpoint_dir(run))["epoch"] >= 1


class _Stop(Exception):
    pass


def test_sigterm_during_a_checkpoint_write_waits_for_the_write():
    def stop(signum, frame):
        raise _Stop

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        finished = []
        with pytest.raises(_Stop):
            with deferred_sigint():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler would have run by now if it were not held
                finished.append(True)
        assert finished == [True]
        assert signal.getsignal(signal.SIGTERM) is stop  # the previous handler is back
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_stops_every_torchrun_rank_and_rank_zero_keeps_the_checkpoint(tmp_path):
    run, logs = tmp_path / "run", tmp_path / "logs"
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                             "--log-dir", str(logs), "--redirects", "3", *TRAIN, "--batch-size", "100",
                             "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    _wait_for_checkpoint(run, proc)
    proc.send_signal(signal.SIGTERM)  # the agent passes it on to every worker
    proc.communicate(timeout=120)
    errs = {p.parent.name: p.read_text() for p in logs.rglob("stderr.log")}
    assert sorted(errs) == ["0", "1"], errs
    assert f"--resume {run}" in errs["0"] and "SIGTERM" in errs["0"]
    assert all("Traceback" not in e for e in errs.values()), errs
    assert load_checkpoint(_checkpoint_dir(run))["epoch"] >= 1


def test_stopping_a_run_without_a_checkpoint_says_resume_starts_again(tmp_path):
    run = tmp_path / "run"
    argv = [a if a != "1" else "0" for a in TRAIN]  # --checkpoint-every 0: no checkpoint will exist
    proc = subprocess.Popen([sys.executable, *argv, "--out", str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    history = run.with_name("run.partial") / "history.csv"
    deadline = time.time() + 120
    while not history.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert history.exists(), "the run never finished an epoch"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and _checkpoint_dir(run) is None
    assert "no checkpoint was written yet" in err and f"--resume {run} starts it again" in err


@pytest.mark.parametrize("seconds", [0, 60])  # the command ends at once / would go on for a minute
@pytest.mark.parametrize("exc, code", [(KeyboardInterrupt, 130), (None, 143)])
def test_an_interrupt_swallowed_by_a_weakref_callback_still_stops_the_command(monkeypatch, capsys, exc, code,
                                                                               seconds):
    # Python runs a signal handler at the next bytecode; inside a weakref callback (an import's module
    # lock is freed through one) the KeyboardInterrupt cannot propagate and is printed as "Exception
    # ignored", so the command would go on and finish. The CLI delivers the signal again.
    import weakref

    from linearnet.cli import main as cli_main

    exc = exc or cli_main.Terminated

    class Lock:
        pass

    def interrupted_in_a_callback(args, env, executable):
        def cb(ref):
            raise exc
        lock = Lock()
        ref = weakref.ref(lock, cb)  # noqa: F841 (the callback runs when lock goes)
        del lock
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # the rest of the command
            time.sleep(0.001)
        finished.append(True)
        return 0

    finished = []
    monkeypatch.setattr(cli_main, "_dispatch", interrupted_in_a_callback)
    assert cli_main.main(["show", "somewhere"]) == code
    assert finished == ([] if seconds else [True])  # a long command is stopped, not run to its end
    assert "Exception ignored" not in capsys.readouterr().err


def test_stopping_a_run_before_its_folder_exists_says_run_it_again(tmp_path, monkeypatch, capsys):
    # e.g. Ctrl-C during a streamed run's statistics pass: there is nothing to resume
    import linearnet.training.run as run_module
    from linearnet.cli.main import main

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "prepare", interrupted)
    run = tmp_path / "run"
    assert main(["train", "linreg", "--no-progress", "--out", str(run)]) == 130
    err = capsys.readouterr().err
    assert "stopped before its run folder was made: run the same command again" in err
    assert "--resume" not in err and not list(tmp_path.iterdir())
