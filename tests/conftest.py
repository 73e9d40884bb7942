import os, sys, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

RUN_TIMEOUT = 3 * 3600   # a whole quick book takes about 20 min on two slow cores; a hung cell fails the step itself

def cli(*args, cwd=ROOT, env=None, timeout=RUN_TIMEOUT):
    "Run the `mobileml-book` console script; returns the CompletedProcess (text)."
    e = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN/'mobileml-book'), *map(str, args)], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)

@pytest.fixture
def root(): return ROOT

@pytest.fixture(scope='session')
def quick_run(tmp_path_factory):
    "One fresh quick run of the whole book per test session, shared by the pipeline and site tests."
    out = tmp_path_factory.mktemp('runs')/'q'
    r = cli('run', '--profile', 'quick', '--out', out, '--no-progress')
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r
