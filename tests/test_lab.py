"`make lab` opens the book in JupyterLab: the server starts from the venv, serves the chapters, and its kernel is the venv's Python."
import json, os, socket, subprocess, sys, time, urllib.request
from pathlib import Path
from conftest import ROOT, BIN

def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_jupyterlab_serves_the_chapters(tmp_path):
    port = _free_port()
    p = subprocess.Popen([str(BIN/'jupyter'), 'lab', '--no-browser', f'--port={port}', '--ip=127.0.0.1',
                          '--IdentityProvider.token=', '--ServerApp.password=', f'--ServerApp.root_dir={ROOT/"nbs"}',
                          *(['--allow-root'] if os.geteuid() == 0 else [])],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={'HOME': str(tmp_path), 'PATH': str(BIN)})
    try:
        base = f'http://127.0.0.1:{port}'
        for _ in range(120):
            try:
                with urllib.request.urlopen(f'{base}/lab', timeout=2) as r:
                    if r.status == 200: break
            except OSError: time.sleep(0.5)
        else: raise AssertionError('JupyterLab did not answer within 60 s')
        with urllib.request.urlopen(f'{base}/api/contents/00_constraints.ipynb?content=0', timeout=10) as r:
            assert json.load(r)['type'] == 'notebook'
        with urllib.request.urlopen(f'{base}/api/kernelspecs', timeout=10) as r:
            specs = json.load(r)
        argv0 = specs['kernelspecs']['python3']['spec']['argv'][0]
        assert argv0 in ('python', sys.executable) or Path(argv0).resolve() == Path(sys.executable).resolve(), argv0
    finally:
        p.terminate(); p.wait(10)
