import os, sys, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def cli(*args, cwd=ROOT, env=None, timeout=900):
    "Run the `mobileml-book` console script; returns the CompletedProcess (text)."
    e = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN/'mobileml-book'), *map(str, args)], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)

@pytest.fixture
def root(): return ROOT
