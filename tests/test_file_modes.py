"""Files linearnet writes get the mode any other tool would give them under the umask (issue 14, item 4)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

# The child sets its umask before importing linearnet (which reads it once), then writes through every
# kind of writer: JSON, CSV, text, a model file (safetensors) and a figure (matplotlib).
CHILD = r"""
import json, os, sys
os.umask(int(sys.argv[2], 8))
from pathlib import Path
import torch
from linearnet.io import write_csv, write_json, write_text
from linearnet.persist import ModelFile, save_model
from linearnet.evaluation import plots
out = Path(sys.argv[1])
write_json(out / "m.json", {"a": 1})
write_csv(out / "h.csv", [{"a": 1}])
write_text(out / "t.txt", "x")
save_model(out / "model.safetensors", ModelFile("linreg", torch.ones(1, 2), torch.zeros(1)))
plots.save_figure(plots.normal_figure(), out / "normal.png")
print(json.dumps({p.name: os.stat(p).st_mode & 0o777 for p in out.iterdir()}))
"""


@pytest.mark.parametrize("umask, expected", [("022", 0o644), ("077", 0o600), ("002", 0o664)])
def test_written_files_honour_the_umask(tmp_path, umask, expected):
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), umask], capture_output=True, text=True,
                         check=True).stdout
    modes = json.loads(out.strip().splitlines()[-1])
    assert sorted(modes) == ["h.csv", "m.json", "model.safetensors", "normal.png", "t.txt"]
    assert {name: oct(mode) for name, mode in modes.items()} == {name: oct(expected) for name in modes}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    for p in tmp_path.iterdir():
        assert stat.S_ISREG(p.stat().st_mode)
