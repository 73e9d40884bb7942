"Chapter 03's search on Ray Tune outside the notebook: ASHA stops the candidates that learn worst, every candidate comes back once."
import math, os, subprocess
import numpy as np
import pytest
from mobileml_book.rundir import ParamError, ray_session
from mobileml_book.optimization import tune_search

def _procs(pattern:str)->set[int]:
    out = subprocess.run(['pgrep', '-f', pattern], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()} - {os.getpid()}

def test_asha_stops_the_weak_and_keeps_every_candidate(monkeypatch):
    import ray
    monkeypatch.setenv('RAY_USAGE_STATS_ENABLED', '0'); monkeypatch.setenv('RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO', '0')
    def known(config, epochs=3, seed=0):   # a trainable whose validation accuracy is its width at every epoch
        from ray import tune
        w = config['candidate']['width']
        for ep in range(epochs): tune.report(dict(val_acc=w, **(dict(acc=w, phone_c_acc=w/2) if ep + 1 == epochs else {})))
    space = [dict(width=w, size=32, depth=1.0) for w in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)]   # the best first
    ray.init(address='local', num_cpus=2, include_dashboard=False)   # two trials at a time; ray_session leaves it to us
    try: df = tune_search(space, epochs=3, trainable=known, progress=False)
    finally: ray.shutdown()
    assert sorted(df['width']) == sorted(c['width'] for c in space) and len(df) == len(space)
    best = df.set_index('width').loc[1.0]
    assert best['status'] == 'trained' and best['epochs_run'] == 3 and best['acc'] == 1.0 and best['phone_c_acc'] == 0.5
    stopped = df[df['status'] == 'stopped early']
    assert len(stopped) >= 1, df                       # the last candidates start after better ones have passed rung 1
    assert (stopped['epochs_run'] == 1).all() and stopped['acc'].isna().all()
    assert set(df['status']) <= {'trained', 'stopped early'}

def test_a_failing_trainable_is_reported_not_hidden(monkeypatch):
    monkeypatch.setenv('RAY_USAGE_STATS_ENABLED', '0'); monkeypatch.setenv('RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO', '0')
    before = _procs('raylet') | _procs('gcs_server')
    def broken(config, epochs=1, seed=0): raise ValueError('no such layer')
    with pytest.raises(RuntimeError, match='every search trial failed.*no such layer'):
        tune_search([dict(width=1.0, size=32, depth=1.0)], epochs=1, trainable=broken, progress=False)
    assert not ((_procs('raylet') | _procs('gcs_server')) - before)   # the local instance it started is gone, error or not

def test_a_trial_larger_than_the_cluster_is_refused_not_queued_forever(monkeypatch):
    monkeypatch.setenv('RAY_USAGE_STATS_ENABLED', '0')
    def never(config, epochs=1, seed=0): raise AssertionError('no trial may start')
    with pytest.raises(ParamError, match='search_trial_cpus=.*use at most'):
        tune_search([dict(width=1.0, size=32, depth=1.0)], epochs=1, cpus_per_trial=os.cpu_count() + 1, trainable=never,
                    progress=False)

def test_an_unreachable_cluster_names_the_fix_at_once():
    import time
    t0 = time.perf_counter()
    with pytest.raises(ParamError, match='ray start --head'):
        with ray_session('127.0.0.1:9'): pass
    assert time.perf_counter() - t0 < 30     # ray.init alone retries for minutes

def test_nothing_to_train_starts_nothing():
    df = tune_search([], epochs=3, progress=False)
    assert len(df) == 0 and 'status' in df.columns
