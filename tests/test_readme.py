"""The README's snippets run as pasted: every ```python block in a fresh interpreter, and every
``linearnet`` command line in a ```bash block names a real command and real options."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


PYTHON_BLOCKS = _blocks("python")


def test_the_readme_has_its_python_snippets():
    assert len(PYTHON_BLOCKS) >= 3  # library, d2l, scikit-learn: an extraction that finds none fails here


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_snippet_runs_as_pasted(index, tmp_path, fmnist):
    script = tmp_path / f"snippet{index}.py"
    script.write_text(PYTHON_BLOCKS[index])
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"README python block {index} failed:\n{PYTHON_BLOCKS[index]}\n{proc.stderr[-3000:]}"


def _command_lines() -> list[list[str]]:
    """Each ``linearnet ...`` line of the bash blocks (continuations joined, comments and usage marks dropped)."""
    lines = []
    for block in _blocks("bash"):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.split("#")[0].strip()
            if "linearnet" not in line.split("-m ")[-1].split()[:1] and not line.startswith("linearnet "):
                continue
            words = shlex.split(line.replace("[", " ").replace("]", " ").replace("|", " "))
            start = words.index("linearnet")
            lines.append(words[start + 1:])
    return lines


def test_readme_command_lines_name_real_commands_and_options():
    from linearnet.cli.main import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps the sub-parsers here
    lines = _command_lines()
    assert len(lines) >= 15
    top = {opt for action in parser._actions for opt in action.option_strings}  # --help, --version
    for words in lines:
        if words[0].startswith("--"):
            assert words[0] in top, words
            continue
        assert words[0] in commands, words
        known = {opt for action in commands[words[0]]._actions for opt in action.option_strings}
        for word in words[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in known, (words[0], word)
