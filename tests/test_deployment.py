"Chapters 05 and 05b over loopback: the delivery service, its client and a guarded rollout on a small store built here (no run, no conversion needed)."
import hashlib, json, os, shutil, socket, subprocess, sys
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import httpx
from mobileml_book.deployment import (Budget, BundleError, DownloadInterrupted, LocalServer, NetworkFaults, Policy, active_bundle,
                                  app_model_dir, assign_catalog, bucket, buckets, candidate_table, fetch_model, get_rollout,
                                  in_stage, load_bundle, load_signing_key, make_app, public_pem, publish, read_manifest,
                                  set_rollout, sha256_file, store_candidates, store_controller)
from mobileml_book.rollout import (Guardrails, Scenario, make_fleet, simulate_rollout)
from mobileml_book.constraints import load_devices
from mobileml_book.conversion import ExportRecord

MODEL = 'toy'

def _record(name, fmt, prec, nbytes, p50, pc, plats=('android', 'ios'), min_os=None):
    return dict(name=name, variant='student fp32' if prec != 'int8' else 'int8 ptq', format=fmt, route='pytorch', precision=prec,
                file=f'{name}.bin', size_bytes=nbytes, platforms=list(plats), min_os=min_os or {'android': '8.0', 'ios': '12'},
                input=dict(name='frames', shape=[1, 32, 32, 1], dtype='uint8', layout='NHWC'), labels=[f'class {i}' for i in range(10)],
                preprocessing=dict(inside_model=True), fidelity=dict(gate='numeric', passed=True, accuracy=pc + 0.1, phone_c_accuracy=pc),
                latency=None if p50 is None else dict(p50_ms=p50, p90_ms=1.3*p50, runtime='test', threads=1, batch=1, runs=10, machine='test'),
                outputs=[dict(name='logits', shape=[1, 10], dtype='float32')], converter={}, runtime={}, source=dict(variant='test'),
                created='2026-01-01T00:00:00+00:00')

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp('deploy')
    rng = np.random.default_rng(0)
    recs = [_record('m-fp32-tflite', 'tflite', 'fp32', 400_000, 0.40, 0.800), _record('m-int8-tflite', 'tflite', 'int8', 110_000, 0.15, 0.798),
            _record('m-fp16-coreml', 'coreml', 'fp16', 200_000, None, 0.801, plats=('ios',), min_os={'ios': '16'})]
    (d/'src').mkdir()
    for r in recs:
        data = rng.bytes(r['size_bytes']); (d/'src'/r['file']).write_bytes(data); r['sha256'] = hashlib.sha256(data).hexdigest()
    recs = [ExportRecord(**r) for r in recs]                 # the Conversion chapter's hand-off, typed as it hands it on
    key = load_signing_key(d/'keys'/'signing_key.pem')
    pub = d/'keys'/'signing_key.pub.pem'; pub.write_bytes(public_pem(key.public_key()))
    (d/'secret.txt').write_text('SECRET-OUTSIDE-THE-STORE')
    devices = load_devices()
    policy = Policy(Budget(latency_ms=1.0), host_ghz=2.5, quality_tol_pt=0.5)
    table = candidate_table(recs)
    store = d/'store'
    for v in ('1.0.0', '1.1.0'):
        publish(store, MODEL, v, recs, table, lambda r: {r.file: d/'src'/r.file}, key, policy, devices)
    return dict(dir=d, store=store, key=key, pub=pub, devices=devices, policy=policy, recs=recs)

@pytest.fixture(scope='module')
def server(world):
    with LocalServer(make_app(world['store'], world['devices'])) as s: yield s

def _phone(i=0, catalog_id='pixel-6'): return dict(device_id=f'test{i:012d}', catalog_id=catalog_id)

def _copy_store(world, tmp_path):
    st = tmp_path/'store'; shutil.copytree(world['store'], st); return st

def test_a_new_release_stays_dark_until_rolled_out(world, server):
    assert get_rollout(world['store'], MODEL)['stable'] == '1.0.0'
    a = httpx.post(f'{server.url}/v1/models/{MODEL}/assignment', json=_phone(), trust_env=False).json()
    assert a['version'] == '1.0.0' and a['arm'] == 'stable'

def test_bundles_verify_and_carry_the_manifest_fields(world):
    manifests = [read_manifest(p) for p in (world['store']/MODEL/'1.0.0').iterdir() if p.is_dir()]
    assert {m['format'] for m in manifests} >= {r.format for r in world['recs']}, 'a record without its published bundle'
    for m in manifests:
        b = load_bundle(world['store']/MODEL/'1.0.0'/m['bundle'], world['pub'])
        for k in ('model', 'version', 'format', 'precision', 'files', 'input', 'preprocessing', 'labels', 'min_os', 'tiers', 'source', 'created', 'key_id'):
            assert k in b.manifest, k
        assert all(e['sha256'] == sha256_file(b.path/e['path']) for e in b.manifest['files'])

def test_interrupted_download_resumes_and_verifies(world, server, tmp_path):
    a = httpx.post(f'{server.url}/v1/models/{MODEL}/assignment', json=_phone(), trust_env=False).json()
    size = sum(f['size_bytes'] for f in a['files'])
    with pytest.raises(DownloadInterrupted):
        fetch_model(server.url, MODEL, _phone(), tmp_path/'app', world['pub'], stop_after=size//3)
    parts = list((app_model_dir(tmp_path/'app', MODEL)/'staging').rglob('*.part'))
    assert parts and sum(p.stat().st_size for p in parts) == size//3
    assert active_bundle(tmp_path/'app', MODEL, world['pub']) is None          # nothing half-downloaded is ever active
    r = fetch_model(server.url, MODEL, _phone(), tmp_path/'app', world['pub'])
    assert r['status'] == 'installed' and sum(r['resumed_from'].values()) == size//3 and r['bytes'] == size - size//3
    b = active_bundle(tmp_path/'app', MODEL, world['pub'])
    assert b.name == a['bundle']
    src = next(rec for rec in world['recs'] if a['bundle'].endswith(rec.name))
    assert b.read() == (world['dir']/'src'/src.file).read_bytes()
    assert fetch_model(server.url, MODEL, _phone(), tmp_path/'app', world['pub'])['status'] == 'up to date'

def test_connection_cut_by_the_server_resumes(world, tmp_path):
    with LocalServer(NetworkFaults(make_app(world['store'], world['devices']), cut_after=50_000)) as flaky:
        with pytest.raises(DownloadInterrupted, match='connection lost'):
            fetch_model(flaky.url, MODEL, _phone(1), tmp_path/'app', world['pub'])
        r = fetch_model(flaky.url, MODEL, _phone(1), tmp_path/'app', world['pub'])
    assert r['status'] == 'installed' and sum(r["resumed_from"].values()) >= 40_000
    assert active_bundle(tmp_path/'app', MODEL, world['pub']) is not None

def test_tampered_file_is_refused_and_the_old_model_stays(world, tmp_path):
    st = _copy_store(world, tmp_path)
    with LocalServer(make_app(st, world['devices'])) as s:
        old = fetch_model(s.url, MODEL, _phone(2), tmp_path/'app', world['pub'])             # 1.0.0 installed
        set_rollout(st, MODEL, stable='1.1.0', candidate=None, percent=0.0, state='stable')  # a new release, tampered on the server
        a = httpx.post(f'{s.url}/v1/models/{MODEL}/assignment', json=_phone(2), trust_env=False).json()
        f = st/MODEL/'1.1.0'/a['bundle']/a['files'][0]['path']; raw = bytearray(f.read_bytes()); raw[1000] ^= 0xFF; f.write_bytes(bytes(raw))
        with pytest.raises(BundleError, match='sha256'):
            fetch_model(s.url, MODEL, _phone(2), tmp_path/'app', world['pub'])
    act = active_bundle(tmp_path/'app', MODEL, world['pub'])
    assert act.manifest['version'] == '1.0.0' and act.name == old['bundle']
    assert not list((tmp_path/'app').rglob('*.part'))

def test_rolling_back_on_the_phone_needs_no_download(world, tmp_path):
    st = _copy_store(world, tmp_path)
    with LocalServer(make_app(st, world['devices'])) as s:
        first = fetch_model(s.url, MODEL, _phone(4), tmp_path/'app', world['pub'])
        set_rollout(st, MODEL, stable='1.1.0', candidate=None, percent=0.0, state='stable')
        assert fetch_model(s.url, MODEL, _phone(4), tmp_path/'app', world['pub'])['version'] == '1.1.0'
        set_rollout(st, MODEL, stable='1.0.0', candidate=None, percent=0.0, state='stable')
        back = fetch_model(s.url, MODEL, _phone(4), tmp_path/'app', world['pub'])
    assert back['status'] == 'reactivated' and back['bytes'] == 0 and back['version'] == first['version'] == '1.0.0'
    assert active_bundle(tmp_path/'app', MODEL, world['pub']).manifest['version'] == '1.0.0'

def test_tampered_manifest_is_refused(world, tmp_path):
    st = _copy_store(world, tmp_path)
    with LocalServer(make_app(st, world['devices'])) as s:
        a = httpx.post(f'{s.url}/v1/models/{MODEL}/assignment', json=_phone(3), trust_env=False).json()
        mp = st/MODEL/a['version']/a['bundle']/'manifest.json'
        m = json.loads(mp.read_bytes()); m['labels'][0], m['labels'][1] = m['labels'][1], m['labels'][0]
        mp.write_bytes(json.dumps(m, sort_keys=True, separators=(',', ':')).encode())
        with pytest.raises(BundleError, match='signature does not verify'):
            fetch_model(s.url, MODEL, _phone(3), tmp_path/'app', world['pub'])
    assert active_bundle(tmp_path/'app', MODEL, world['pub']) is None
    with pytest.raises(BundleError, match='signature does not verify'): load_bundle(mp.parent, world['pub'])

def test_a_manifest_signed_by_another_key_is_refused(world):
    other = load_signing_key(world['dir']/'other'/'k.pem')
    with pytest.raises(BundleError, match='trusts key'):
        load_bundle(next(p for p in (world['store']/MODEL/'1.0.0').iterdir() if p.is_dir()), other.public_key())

def _raw_get(server, path:str)->tuple[int, bytes]:
    "A GET sent byte for byte, so no client library normalises the path first."
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as s:
        s.sendall(f'GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'.encode()); data = b''
        while chunk := s.recv(65536): data += chunk
    return int(data.split(b' ', 2)[1]), data

def test_path_traversal_and_bad_requests_get_4xx_and_no_file(world, server):
    a = httpx.post(f'{server.url}/v1/models/{MODEL}/assignment', json=_phone(), trust_env=False).json()
    base = f"/v1/files/{MODEL}/{a['version']}/{a['bundle']}"
    paths = [f'{base}/../../../../secret.txt', f'{base}/..%2F..%2F..%2F..%2Fsecret.txt', f'/v1/files/{MODEL}/../../secret.txt',
             f'/v1/files/{MODEL}/%2E%2E/%2E%2E/secret.txt', f'/v1/files/%2E%2E/x/y/secret.txt', f'{base}/%2Fetc%2Fpasswd',
             f'{base}/.hidden', f'{base}/not-listed.bin', f"/v1/files/{MODEL}/{a['version']}/{a['bundle']}%2F..%2F..%2F..%2F/secret.txt"]
    for p in paths:
        status, data = _raw_get(server, p)
        assert 400 <= status < 500, (p, status)
        assert b'SECRET' not in data and b'root:' not in data and b'PRIVATE KEY' not in data, p
    c = httpx.Client(base_url=server.url, trust_env=False)
    assert c.post('/v1/models/nope/assignment', json=_phone()).status_code == 404
    assert c.post(f'/v1/models/{MODEL}/assignment', json={'device_id': 'x'}).status_code == 422
    assert c.post(f'/v1/models/{MODEL}/assignment', json={**_phone(), 'ram_gb': -2}).status_code == 422
    assert c.post(f'/v1/models/{MODEL}/assignment', json={**_phone(), 'catalog_id': 'nokia-3310'}).status_code == 422
    assert c.post(f'/v1/models/{MODEL}/assignment', json={**_phone(), 'os_version': '16; rm -rf'}).status_code == 422
    assert c.post(f'/v1/models/{MODEL}/assignment', json={'device_id': 'abcdefgh1', 'os': 'ios'}).status_code == 422
    assert c.get(f'/v1/files/{MODEL}/9.9.9/{a["bundle"]}/manifest.json').status_code == 404

def test_etag_and_ranges(world, server):
    a = httpx.post(f'{server.url}/v1/models/{MODEL}/assignment', json=_phone(), trust_env=False).json()
    url = a['files'][0]['url']; local = world['store']/MODEL/a['version']/a['bundle']/a['files'][0]['path']
    c = httpx.Client(trust_env=False)
    r = c.get(url); assert r.headers['etag'] == f'"{sha256_file(local)}"'
    assert c.get(url, headers={'If-None-Match': r.headers['etag']}).status_code == 304
    p = c.get(url, headers={'Range': 'bytes=100-199'}); assert p.status_code == 206 and p.content == local.read_bytes()[100:200]
    assert c.get(url, headers={'Range': 'bytes=100-', 'If-Range': '"other"'}).status_code == 200
    assert c.get(url, headers={'Range': f'bytes={local.stat().st_size}-'}).status_code == 416

def test_cohort_assignment_is_stable(world, server):
    ids = [f'{i:016x}' for i in range(2000)]
    b = buckets(ids, 'toy:1.1.0')
    assert b.tolist() == buckets(ids, 'toy:1.1.0').tolist()
    code = "import sys; from mobileml_book.deployment import buckets; print(','.join(map(str, buckets([f'{i:016x}' for i in range(2000)], 'toy:1.1.0'))))"
    other = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, env={**os.environ, 'PYTHONHASHSEED': '123'})
    assert other.stdout.strip() == ','.join(map(str, b))                          # another process, another hash seed: same buckets
    assert (in_stage(b, 1) <= in_stage(b, 5)).all() and (in_stage(b, 5) <= in_stage(b, 25)).all()
    set_rollout(world['store'], MODEL, stable='1.0.0', candidate='1.1.0', percent=25.0, state='rolling', salt='toy:1.1.0')
    try:
        c = httpx.Client(base_url=server.url, trust_env=False)
        first = [c.post(f'/v1/models/{MODEL}/assignment', json=dict(device_id=i, catalog_id='pixel-6')).json() for i in ids[:60]]
        again = [c.post(f'/v1/models/{MODEL}/assignment', json=dict(device_id=i, catalog_id='galaxy-s24')).json() for i in ids[:60]]
        assert [a['arm'] for a in first] == [a['arm'] for a in again] == ['candidate' if x else 'stable' for x in in_stage(b[:60], 25)]
        assert [a['bucket'] for a in first] == [bucket(i, 'toy:1.1.0') for i in ids[:60]]
    finally: set_rollout(world['store'], MODEL, stable='1.0.0', candidate=None, percent=0.0, state='stable')

def test_guardrail_breach_halts_and_rolls_back(world, server):
    devices, store = world['devices'], world['store']
    assign = assign_catalog(store_candidates(store, MODEL, '1.0.0'), devices, world['policy'])
    fleet = make_fleet(devices, assign, 20_000, seed=0)
    guard, stages, salt = Guardrails(), [1.0, 5.0, 25.0, 100.0], 'toy:1.1.0'
    ctl = store_controller(store, MODEL, '1.0.0', '1.1.0', salt)
    try:
        bad = simulate_rollout(fleet, Scenario('worse', quality_pt=-3.0), stages, guard, 2, salt=salt, seed=1, on_change=ctl)
        assert bad['outcome']['halted'] and 'quality' in bad['outcome']['reason'] and bad['outcome']['final_percent'] == 0.0
        assert bad['outcome']['stages_reached'][-1] < 100 and bad['timeline'].percent.iloc[-1] == 0.0
        ro = get_rollout(store, MODEL); assert ro['state'] == 'halted' and ro['percent'] == 0.0
        c = httpx.Client(base_url=server.url, trust_env=False)
        arms = [c.post(f'/v1/models/{MODEL}/assignment', json=dict(device_id=d, catalog_id=k)).json()
                for d, k in zip(fleet.device_id[:100], fleet.catalog_id[:100])]
        assert all(a['version'] == '1.0.0' and a['arm'] == 'stable' for a in arms)           # rolled back for everyone
        crash = simulate_rollout(fleet, Scenario('crashes', crash_factor=10.0, tiers=('low', 'mid')), stages, guard, 2, salt=salt, seed=1)
        assert crash['outcome']['halted'] and 'crash' in crash['outcome']['reason']
        good = simulate_rollout(fleet, Scenario('better', quality_pt=2.0), stages, guard, 2, salt=salt, seed=1, on_change=ctl)
        assert not good['outcome']['halted'] and good['outcome']['stages_reached'] == stages and good['ab']['ci_low'] > 0
        assert get_rollout(store, MODEL)['stable'] == '1.1.0'
    finally: set_rollout(store, MODEL, stable='1.0.0', candidate=None, percent=0.0, state='stable')

def test_the_app_takes_more_routes(world):
    from fastapi import APIRouter
    r = APIRouter()
    @r.post('/v1/telemetry')
    def telemetry(): return {'ok': True}
    with LocalServer(make_app(world['store'], world['devices'], routers=[r])) as s:
        assert httpx.post(f'{s.url}/v1/telemetry', trust_env=False).json() == {'ok': True}
        assert httpx.get(f'{s.url}/healthz', trust_env=False).json()['models'] == [MODEL]
