"A team's own photo folder through every chapter: RGB, four classes of 30 photos, unlike Fashion-MNIST in every way."
import json
import pytest
from conftest import cli
from folders import make_photo_folder

@pytest.fixture(scope='module')
def byo_run(tmp_path_factory):
    d = tmp_path_factory.mktemp('byo')
    root = make_photo_folder(d/'photos', ('cat', 'coffee', 'rocket', 'astronaut'), n=30)
    out = d/'runs'/'byo'
    r = cli('run', '--profile', 'quick', '-p', f'source=folder:{root}', '--out', out, '--no-progress')   # RGB is the folder default
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return out, r

def test_every_chapter_runs_on_a_team_folder(byo_run):
    out, r = byo_run
    st = json.loads((out/'status.json').read_text())
    assert st['steps'] and all(s['state'] == 'done' for s in st['steps'].values()), st['steps']
    m = json.loads((out/'metrics.json').read_text())
    assert m['data']['n_classes'] == 4 and m['data']['channels'] == 3
    assert m['data']['folder']['ignored'] == {'hidden file': 1, 'cache folder @eaDir': 1}
    assert any(p.endswith('notes.txt') for p in m['data']['folder']['skipped'])

def test_team_folder_records_carry_the_rgb_contract(byo_run):
    out, _ = byo_run
    from mobileml_book.conversion import load_records
    recs = load_records(out).records
    assert recs and all(r.preprocessing['channel_order'] == 'RGB' and r.preprocessing['frame_channels'] == 3 for r in recs)
    assert {'onnx-fp32', 'tflite-fp32', 'executorch-fp32', 'coreml-fp32'} <= {r.name for r in recs}

def test_findings_reach_the_report(byo_run):
    out, r = byo_run
    m = json.loads((out/'metrics.json').read_text())
    found = [f for ch in m.values() if isinstance(ch, dict) for f in ch.get('findings', [])]
    html = (out/'report.html').read_text()
    for f in found: assert f.split('\n')[0][:60].replace('&', '&amp;').replace('<', '&lt;').replace("'", '&#x27;') in html
    assert ('Findings on this run' in html) == bool(found)

def test_a_team_folder_gives_a_model_far_above_chance_with_its_interval(byo_run):
    "30 photos per class: the pretrained student must be far above chance, and the report must say how sure that is."
    out, _ = byo_run
    m = json.loads((out/'metrics.json').read_text())
    t, chance = m['training'], 1/m['data']['n_classes']
    assert t['student_acc'] >= 2.5*chance, t['student_acc']
    lo, hi = t['student_acc_ci']
    assert lo <= t['student_acc'] <= hi and hi - lo > 0.05       # a few dozen test photos: a wide interval, stated
    html = (out/'report.html').read_text()
    assert 'What this run says' in html and f"{lo:.1%}" in html
