"""`linearnet --help`, each command's help and argument errors answer without loading torch (issue 14, item 1).

Checked by what is imported, not by timing: a subprocess runs the CLI and reports which heavy modules
``sys.modules`` holds afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "matplotlib", "pandas", "numpy", "safetensors", "pyarrow")

CHILD = r"""
import contextlib, io, json, sys
from linearnet.cli.main import main
err = io.StringIO()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "err": err.getvalue(), "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
""".replace("HEAVY", repr(HEAVY))


def _run(*argv: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _commands() -> list[str]:
    from linearnet.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


def test_every_command_is_covered():
    assert {"train", "predict", "evaluate", "data", "chapter"} <= set(_commands())


def test_version_names_the_installed_package_and_loads_no_heavy_module():
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "linearnet", "--version"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == f"linearnet {version('linearnet')}"
    r = _run("--version")
    assert r["code"] == 0 and r["heavy"] == []


@pytest.mark.parametrize("argv", [["--help"], *[[c, "--help"] for c in _commands()]], ids=" ".join)
def test_help_loads_no_heavy_module(argv):
    r = _run(*argv)
    assert r["code"] == 0 and r["heavy"] == []


@pytest.mark.parametrize("argv, says", [
    (["train", "softmax", "--lr", "-1"], "--lr must be a finite number > 0"),
    (["train", "softmax", "--lr", "inf"], "--lr must be a finite number > 0"),
    (["train", "linreg", "--epochs", "x"], "is not an integer"),
    (["train", "linreg", "--impl", "nope"], "--impl nope is not available"),
    (["train", "linreg", "--data", "/no/such.csv"], "file not found"),
    (["train", "softmax", "--resize", "0"], "--resize must be between"),
    (["frobnicate"], "invalid choice"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_argument_errors_answer_before_heavy_imports(argv, says):
    r = _run(*argv)
    assert r["code"] == 2 and says in r["err"] and "Traceback" not in r["err"]
    assert r["heavy"] == []


def test_import_linearnet_is_lazy_and_its_names_still_resolve():
    code = ("import sys, linearnet; before = 'torch' in sys.modules; "
            "from linearnet import TrainConfig, ConfigError; mid = 'torch' in sys.modules; "
            "from linearnet import train_run, least_squares; "
            "print(before, mid, 'torch' in sys.modules, callable(train_run), 'train_run' in dir(linearnet))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True", "True", "True"]
    import linearnet

    with pytest.raises(AttributeError):
        linearnet.no_such_name  # noqa: B018


FREEZE_CHILD = r"""
import contextlib, gc, io, sys
from linearnet.cli.main import main, run
with contextlib.redirect_stdout(io.StringIO()):
    main(["data", "info"])
    in_process = gc.get_freeze_count()
    sys.argv = ["linearnet", "data", "info"]
    code = run()
print(in_process, gc.get_freeze_count(), code)
"""


def test_only_the_executable_freezes_the_garbage_collector():
    # run() (the linearnet executable) freezes torch's long-lived objects out of the collector; main()
    # called in a process that goes on (a test, a notebook) must not, or its garbage would be kept forever
    out = subprocess.run([sys.executable, "-c", FREEZE_CHILD], capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    in_process, executable, code = map(int, out)
    assert in_process == 0 and code == 0
    assert executable > 100_000  # torch alone holds ~165,000 objects
