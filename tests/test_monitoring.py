"Chapter 06 on its own: the dispatcher killed with SIGKILL and resumed, telemetry validation and idempotency, drift alerts, the registry (no run needed)."
import json, os, signal, sqlite3, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import httpx
from mobileml_book.rundir import RunDir, data_dir
from mobileml_book.constraints import load_devices
from mobileml_book.data import load_idx
from mobileml_book.conversion import ExportRecord
from mobileml_book.deployment import LocalServer, make_app
from mobileml_book.monitoring import (Dispatcher, TelemetryStore, Thresholds, ThermalModel, TIER_THERMAL, check_alerts, cheap_cut, gallery_work,
                                   image_stats, kill_and_resume, live_version, make_gallery, psi, reference_profile, register_release, rollback,
                                   set_live, shift_images, simulate_fleet, start_dispatcher, telemetry_router, version_table, fleet_end)

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "Real Fashion-MNIST images shipped with the book and a tiny ONNX classifier exported here."
    from mobileml_book.conversion import FrameModel, export_onnx, runner, tiny_model
    d = tmp_path_factory.mktemp('monitor')
    ds = load_idx(data_dir()/'fashion-mnist-subset', 'test')
    net, spec = tiny_model(frame_size=ds.x.shape[1], frame_channels=1)
    onnx = export_onnx(FrameModel(net, spec), spec, d/'run'/'artifacts'/'conversion'/'tiny.onnx')
    return dict(dir=d, x=ds.x, onnx=onnx, f=runner(onnx, 'onnx'))

def _proba(f, x):
    z = f(x); z = z - z.max(1, keepdims=True); e = np.exp(z); return e/e.sum(1, keepdims=True)

def test_dispatcher_killed_with_sigkill_resumes_exactly_once(world, tmp_path):
    gallery, meta = make_gallery(world['x'], 400, seed=1)
    todo = cheap_cut(gallery, meta)
    gp = tmp_path/'gallery.npy'; np.save(gp, gallery)
    db = tmp_path/'queue.sqlite'
    d = Dispatcher(db); assert d.enqueue(todo.item_id, todo.priority) == len(todo); d.close()
    r = kill_and_resume(db, gp, world['onnx'], 'onnx', batch=16, kill_after_batches=2, pace_s=0.1)
    assert r['killed'] and r['signal'] == 'SIGKILL'
    assert 0 < r['done_at_kill'] < r['items']                      # killed mid-run
    assert r['processed_once'] and r['lost'] == 0 and r['repeated'] == 0 and r['results'] == r['items'] == len(todo)
    assert r['processes'] == 2                                     # the killed process's batches were kept, the rest done on resume
    d = Dispatcher(db); res = d.results(); d.close()
    got = res.set_index('item_id').label                          # the results are those of a clean run
    assert all(int(got[i]) == int(l) for i, l in zip(todo.item_id, gallery_work(gp, world['onnx'])(todo.item_id.tolist())[0]))

def test_cheap_cut_skips_screenshots_and_duplicates(world):
    gallery, meta = make_gallery(world['x'], 300, seed=2)
    todo = cheap_cut(gallery, meta)
    assert set(meta.set_index('item_id').loc[todo.item_id, 'kind']) == {'photo'}
    assert len({gallery[i].tobytes() for i in todo.item_id}) == len(todo)
    assert todo.priority.is_monotonic_decreasing

def test_thermal_model_rests_just_enough():
    t = ThermalModel(**TIER_THERMAL['low'], limit=40.0, temp=39.0)
    r = t.rest_needed(10, 2.0); assert r > 0
    t.step(r, 0.0); assert abs(t.after(10, 2.0) - 40.0) < 1e-6
    with pytest.raises(ValueError): ThermalModel(**TIER_THERMAL['low'], limit=26.0).rest_needed(1000, 2.0)

def _event(i=0, **kw):
    return dict(dict(event_id=f'test-event-{i:06d}', device_id='test-phone-0001', catalog_id='pixel-6', model='toy', version='1.0.0', bundle='android-onnx-fp32',
                     ts=1.7e9 + i, latency_ms=3.0, memory_mb=20.0, battery_pct=70, brightness=0.3, contrast=0.3, sharpness=1.7, prediction=2, confidence=0.6), **kw)

def test_telemetry_refuses_malformed_events_and_stores_a_retry_once(tmp_path):
    store = TelemetryStore(f"sqlite:///{tmp_path/'t.db'}")
    with LocalServer(make_app(tmp_path/'store', load_devices(), routers=(telemetry_router(store),))) as s, httpx.Client(base_url=s.url, trust_env=False) as c:
        ok = c.post('/v1/telemetry', json=dict(events=[_event(0), _event(1)]))
        assert ok.status_code == 200 and ok.json() == dict(stored=2, duplicates=0, clock_clamped=0)
        again = c.post('/v1/telemetry', json=dict(events=[_event(1), _event(2)]))             # a retry that also carries a new event
        assert again.json() == dict(stored=1, duplicates=1, clock_clamped=0)
        for bad in [_event(3, confidence=1.5), {k: v for k, v in _event(4).items() if k != 'latency_ms'}, _event(5, photo='...'),
                    _event(6, event_id='x'), _event(7, version='one')]:
            r = c.post('/v1/telemetry', json=dict(events=[_event(8), bad]))
            assert r.status_code == 422 and r.json()['detail'][0]['loc'][:3] == ['body', 'events', 1]
        assert c.post('/v1/telemetry', content=b'not json', headers={'content-type': 'application/json'}).status_code == 422
        assert c.get('/v1/telemetry/summary').json() == dict(events=3, clock_clamped=0)
    assert store.count() == 3 and sorted(store.frame().event_id) == [f'test-event-{i:06d}' for i in range(3)]   # nothing of a refused batch

def _server(tmp_path, store):
    return LocalServer(make_app(tmp_path/'store', load_devices(), routers=(telemetry_router(store),)))

@pytest.mark.parametrize('field,value', [('confidence', 'NaN'), ('latency_ms', 'Infinity'), ('brightness', '-Infinity')])
def test_non_finite_number_is_a_422_naming_the_field(tmp_path, field, value):
    store = TelemetryStore(f"sqlite:///{tmp_path/'t.db'}")
    body = json.dumps(dict(events=[_event(0), _event(1, **{field: 12345.678})])).replace('12345.678', value)
    assert value in body
    with _server(tmp_path, store) as s, httpx.Client(base_url=s.url, trust_env=False) as c:
        r = c.post('/v1/telemetry', content=body, headers={'content-type': 'application/json'})
    assert r.status_code == 422                                                    # 500 before: the error could not be encoded
    assert r.json()['detail'][0]['loc'] == ['body', 'events', 1, field] and store.count() == 0

def test_oversized_bodies_get_413_unread_and_errors_never_echo_input(tmp_path):
    store = TelemetryStore(f"sqlite:///{tmp_path/'t.db'}")
    with _server(tmp_path, store) as s, httpx.Client(base_url=s.url, trust_env=False, timeout=60) as c:
        big_field = c.post('/v1/telemetry', json=dict(events=[_event(0, note='x'*20_000_000)]))
        t0 = time.perf_counter()
        many = c.post('/v1/telemetry', json=dict(events=[_event(i) for i in range(50_000)]))
        many_s = time.perf_counter() - t0
        chunks = c.post('/v1/telemetry', content=iter([b'{"events": [', b' '*(2 << 20), b']}']),
                        headers={'content-type': 'application/json'})                   # no Content-Length
        secret = c.post('/v1/telemetry', json=dict(events=[_event(0, note='s3cr3t-value')]))
    for r in (big_field, many, chunks):
        assert r.status_code == 413 and len(r.content) < 500 and 'bytes' in r.json()['detail'], (r.status_code, len(r.content))
    assert many_s < 30                                                             # refused, not parsed (3.7 s to parse before)
    assert secret.status_code == 422 and b's3cr3t-value' not in secret.content and 'note' in secret.text
    assert store.count() == 0

def test_a_phone_with_a_wrong_clock_does_not_silence_drift_alerts(tmp_path, alerts):
    now = fleet_end(3)
    store = TelemetryStore(f"sqlite:///{tmp_path/'t.db'}", clock=lambda: now)
    ev = alerts['events']['night']
    for i in range(0, len(ev), 500): store.add(ev[i:i + 500])
    ahead = dict(ev[-1], event_id='wrong-clock-000001', ts=now + 365*86_400)       # one phone a year ahead
    assert store.add([ahead])['clock_clamped'] == 1 and store.count(clamped=True) == 1
    fr = store.frame()
    assert fr.ts.max() <= now and fr.device_ts.max() == ahead['ts']               # filed at the server's time, kept as sent
    got = check_alerts(fr, alerts['ref'], Thresholds(alpha=0.01), 86_400, '1.0.0', '1.1.0', now=now)[0]
    assert [a['metric'] for a in got] == [a['metric'] for a in alerts['night']] and 'brightness' in {a['metric'] for a in got}

def test_psi():
    rng = np.random.default_rng(0); a = rng.normal(size=4000)
    assert psi(a, rng.normal(size=4000)) < 0.02 and psi(a, a + 1) > 0.25

@pytest.fixture(scope='module')
def alerts(world):
    x = world['x']; ref_x, live_x = x[:1000], x[1000:]
    ref = reference_profile(ref_x, _proba(world['f'], ref_x))
    night = shift_images(live_x, 'night', 3, seed=0)
    pools = {k: ({s: v.to_numpy() for s, v in image_stats(im).items()}, _proba(world['f'], im)) for k, im in [('clean', live_x), ('shifted', night)]}
    dev = load_devices(); lat = {d: 2.0 for d in dev.index}
    out = dict(ref=ref, events={})
    for scen, kw in [('night', dict(shift_share=0.6, regression=1.0)), ('control', dict(shift_share=0.0, regression=1.0))]:
        out['events'][scen] = ev = simulate_fleet(dev, 60, 3, 6, pools, lat, 20.0, candidate_share=0.5, cohort=scen, seed=3, **kw)
        out[scen] = check_alerts(pd.DataFrame(ev), ref, Thresholds(alpha=0.01), 86_400, '1.0.0', '1.1.0', now=fleet_end(3))[0]
    return out

def test_night_shift_raises_an_input_drift_alert(alerts):
    drift = [a for a in alerts['night'] if a['kind'] == 'input drift']
    assert {a['metric'] for a in drift} >= {'brightness'}
    for a in drift: assert a['threshold'] and a['window']['events'] > 0 and a['devices'] and a['versions']

def test_control_raises_no_alert(alerts):
    assert alerts['control'] == []

def test_registered_version_found_by_alias_and_rolled_back(world):
    run = RunDir(world['dir']/'run')
    f = world['onnx']; sha = __import__('hashlib').sha256(f.read_bytes()).hexdigest()
    recs = [ExportRecord(name=f'{fmt}-fp32', variant='student fp32', format=fmt, route='pytorch', precision='fp32', file=f.name,
                         sha256=(sha[:-1] + str(i)), size_bytes=f.stat().st_size, input={}, outputs=[], labels=[], preprocessing={},
                         platforms=['ios'] if fmt == 'coreml' else ['android', 'ios'], min_os={}, converter={}, runtime={},
                         source=dict(checkpoint='student.pt', checkpoint_sha256='abc', mlflow_run_id='nope'), created='2026-01-01T00:00:00+00:00')
            for i, fmt in enumerate(['tflite', 'coreml'])]                # the Conversion chapter's records, typed as it hands them on
    uri = f"sqlite:///{world['dir']/'mlflow.db'}"
    r1 = register_release(uri, 'toy', '1.0.0', recs, run); r2 = register_release(uri, 'toy', '1.1.0', recs, run)
    assert len(register_release(uri, 'toy', '1.0.0', recs, run)) == 2 and len(version_table(uri, 'toy')) == 4     # idempotent
    v = lambda r, fmt: int(r[r.format == fmt].version.iloc[0])
    set_live(uri, 'toy', 'ios', v(r1, 'coreml')); set_live(uri, 'toy', 'ios', v(r2, 'coreml'))
    m = live_version(uri, 'toy', 'ios')
    assert int(m.version) == v(r2, 'coreml') and m.tags['format'] == 'coreml' and m.tags['release'] == '1.1.0' and m.tags['checkpoint'] == 'student.pt'
    assert rollback(uri, 'toy', 'ios') == v(r1, 'coreml') and int(live_version(uri, 'toy', 'ios').version) == v(r1, 'coreml')
    t = version_table(uri, 'toy')
    assert set(t[t.release == '1.0.0'].format) == {'tflite', 'coreml'}          # Core ML and TFLite of one release kept together
    with pytest.raises(ValueError): rollback(uri, 'toy', 'ios')
