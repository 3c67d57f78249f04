"""The mutation table of scripts/mutants.py stays valid: every pattern occurs once, every named test exists,
and a pattern that no longer matches fails the script loudly instead of being skipped."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("mutants_script", ROOT / "scripts" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutation_matches_once_and_names_existing_tests():
    mut = _script()
    assert mut.check_patterns(mut.MUTANTS) == []
    names = [m.name for m in mut.MUTANTS]
    assert len(names) == len(set(names))
    for m in mut.MUTANTS:
        assert m.old != m.new and m.tests, m.name
        for test in m.tests:
            path, _, func = test.partition("::")
            assert f"def {func}(" in (ROOT / path).read_text(), (m.name, test)


def test_a_pattern_that_no_longer_matches_fails_loudly(monkeypatch, capsys):
    mut = _script()
    gone = mut.Mutant("renamed-code", "linearnet/io.py", "this text is not in the file", "x", ("tests/test_cli.py",))
    monkeypatch.setattr(mut, "MUTANTS", [*mut.MUTANTS[:1], gone])
    assert mut.main(["--no-baseline"]) == 2
    err = capsys.readouterr().err
    assert "renamed-code" in err and "linearnet/io.py" in err and "found 0 times" in err
