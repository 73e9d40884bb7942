"Chapter 08 in a whole quick run: what the phone's training program does outside the notebook, what the server received, what the goals read."
import json
import numpy as np
import torch
from mobileml_book.rundir import RunDir
from mobileml_book.ondevice import load_record
from mobileml_book.pipeline import goals

def test_the_training_program_trains_in_a_fresh_runtime(quick_run):
    from executorch.extension.training import _load_for_executorch_for_training, get_sgd_optimizer
    run = RunDir(quick_run[0]); rec = load_record(run)
    tm = _load_for_executorch_for_training(str(run.path/rec.program))
    g = torch.Generator().manual_seed(0)
    z, y = torch.rand(rec.program_batch, 1280, generator=g), torch.randint(0, 10, (rec.program_batch,), generator=g)
    loss0 = float(tm.forward_backward('forward', (z, y))[0])
    before = {k: v.clone() for k, v in tm.named_parameters().items()}
    assert set(before) == {'head.weight', 'head.bias'}                     # the classifier, and nothing else, is trainable
    opt = get_sgd_optimizer(tm.named_parameters(), 0.01, 0, 0, 0, False)
    for _ in range(5): opt.step(tm.named_gradients()); loss = float(tm.forward_backward('forward', (z, y))[0])
    assert loss < loss0, (loss0, loss)                                     # the runtime's own steps lower the loss
    assert any(not torch.equal(before[k], v) for k, v in tm.named_parameters().items())

def test_the_server_received_only_parameters_and_counts(quick_run):
    m = json.loads((quick_run[0]/'metrics.json').read_text())['ondevice']
    assert m['data_leaks'] == 0 and m['replies'] >= m['phones']*m['rounds']
    fed = m['federated']
    assert {'FedAvg', 'FedAvg, int8 updates'} <= set(fed) and any(v['epsilon'] for v in fed.values())
    assert all(len(v['accuracy_per_round']) == m['rounds'] + 1 for v in fed.values())
    assert m['int8_upload_ratio'] > 3.5                                     # int8 updates: about a quarter of the bytes
    eps = sorted((v['epsilon'], k) for k, v in fed.items() if v['epsilon'])
    noise = [float(k.split()[-1]) for _, k in eps]
    assert noise == sorted(noise, reverse=True)                            # more noise, smaller epsilon

def test_the_goals_read_the_chapter(quick_run):
    g = goals(json.loads((quick_run[0]/'metrics.json').read_text()))
    rows = g[g.chapter == 'ondevice']
    assert len(rows) == 5 and (rows.met != 'not measured').all(), rows
