"Chapter 09 outside the notebook: a sweep on a real two-node Ray cluster survives losing a worker, and bad grids stop before anything runs."
import json, os, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = [str(Path(sys.executable).parent/'mobileml-book')]

def _procs(pattern:str)->set[int]:
    "pids of processes whose command line contains `pattern`."
    out = subprocess.run(['pgrep', '-f', pattern], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()} - {os.getpid()}

def _running(out:Path)->int:
    "Points of a sweep whose run directory shows a chapter running now."
    n = 0
    for s in out.glob('points/*/status.json'):
        try: n += any(v.get('state') == 'running' for v in json.loads(s.read_text()).get('steps', {}).values())
        except (json.JSONDecodeError, OSError): pass
    return n

def test_a_sweep_survives_losing_a_worker(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster
    monkeypatch.setenv('RAY_USAGE_STATS_ENABLED', '0')
    before = _procs('raylet') | _procs('gcs_server') | _procs('ipykernel_launcher')
    grid = tmp_path/'grid.yaml'
    grid.write_text(yaml.safe_dump(dict(only=['constraints'], grid={'device': ['iphone-x', 'redmi-9a', 'pixel-6', 'galaxy-s24']})))
    out = tmp_path/'sweep'
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False))
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        p = subprocess.Popen(CLI + ['sweep', str(grid), '--out', str(out), '--address', cluster.address, '--no-progress'],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        t0 = time.time()
        while _running(out) < 2 and p.poll() is None and time.time() - t0 < 300: time.sleep(0.5)
        assert _running(out) == 2, 'both nodes should be running a point before the worker is killed'
        cluster.remove_node(worker, allow_graceful=False)                      # the worker dies mid-chapter
        log, _ = p.communicate(timeout=900)
        assert p.returncode == 0, log
    finally:
        cluster.shutdown()
    led = json.loads((out/'sweep.json').read_text())
    assert sorted(pt['values']['device'] for pt in led['points'].values()) == ['galaxy-s24', 'iphone-x', 'pixel-6', 'redmi-9a']
    assert {pt['state'] for pt in led['points'].values()} == {'done'}
    assert led['stages_run'] == led['stages'] == 4                            # every stage returned to the ledger once
    rows = pd.read_csv(out/'points.csv')
    assert len(rows) == 4 and rows.point.is_unique and set(rows.point) == set(led['points'])
    for pt in led['points'].values():                                         # each point's run is whole: done, its metrics there once
        st = json.loads((out/pt['dir']/'status.json').read_text())['steps']
        assert list(st) == ['00_constraints'] and st['00_constraints']['state'] == 'done'
        assert list(json.loads((out/pt['dir']/'metrics.json').read_text())) == ['constraints']
        assert not list((out/pt['dir']/'notebooks').glob('.*partial*'))
    deadline = time.time() + 30                                               # nothing of the cluster is left running
    while (left := (_procs('raylet') | _procs('gcs_server') | _procs('ipykernel_launcher')) - before) and time.time() < deadline: time.sleep(1)
    assert not left, f'processes left running: {left}'

@pytest.mark.parametrize('text, msg', [
    ('grid: {devise: [iphone-x]}', 'Did you mean device'),
    ('grid: {device: [iphone-x, nokia-3310]}', 'nokia-3310'),
    ('grid: {seed: [0]}\nphone: nokia-3310', 'not in the device catalog'),
    ('grid: {seed: []}', 'empty list'),
])
def test_a_bad_grid_stops_before_anything_runs(tmp_path, text, msg):
    g = tmp_path/'grid.yaml'; g.write_text(text)
    r = subprocess.run(CLI + ['sweep', str(g), '--out', str(tmp_path/'out')], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert not (tmp_path/'out').exists()

def test_a_failing_point_names_its_chapter_and_cell_and_the_others_go_on(tmp_path):
    from PIL import Image
    import numpy as np
    photos = tmp_path/'photos'
    for c in ['cat', 'dog']:                                                  # 7 photos a class: valid, but under min_per_class below
        (photos/c).mkdir(parents=True)
        for i in range(7): Image.fromarray(np.full((40, 40, 3), 30*i, np.uint8)).save(photos/c/f'{i}.jpg')
    g = tmp_path/'grid.yaml'
    g.write_text(yaml.safe_dump(dict(only=['constraints', 'data'], params={'data.source': f'folder:{photos}'},
                                     grid={'data.min_per_class': [20, 50], 'constraints.photo_kb': [300]})))
    out = tmp_path/'sweep'
    r = subprocess.run(CLI + ['sweep', str(g), '--out', str(out), '--no-progress'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    led = json.loads((out/'sweep.json').read_text())
    assert [p['state'] for p in led['points'].values()] == ['failed', 'failed']
    for p in led['points'].values():
        assert p['chapter'] == '01_data' and 'min_per_class' in p['error'] and p['cell'].strip(), p
        assert p['shared'] == ['00_constraints']                              # the chapter before the failure ran once, for both
    assert 'failed in' in r.stdout and (out/'report.html').read_text().count("class='failed'") == 2
