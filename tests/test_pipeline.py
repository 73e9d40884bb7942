"The pipeline runner end to end: the contract's files, parameter validation that writes nothing, failure and --resume."
import json, textwrap
from pathlib import Path
import nbformat
import pytest
from conftest import ROOT, cli

def test_quick_run_writes_the_contract(quick_run):
    out, r = quick_run
    for f in ('params.yaml', 'metrics.json', 'status.json', 'report.html'): assert (out/f).is_file(), f
    assert (out/'notebooks'/'00_constraints.ipynb').is_file()
    assert (out/'artifacts'/'constraints'/'figures').is_dir()
    st = json.loads((out/'status.json').read_text())
    assert all(s['state'] == 'done' and s['seconds'] > 0 for s in st['steps'].values())
    assert '00_constraints' in st['steps']
    assert 'report:' in r.stdout and str(out) in r.stdout

OPTIMIZATION_KEYS = ('int8_size_ratio', 'int8_acc_drop_pt', 'int8_phone_c_drop_pt', 'naive_ptq_acc_drop_pt', 'naive_ptq_phone_c_drop_pt',
                     'int8_latency_speedup', 'teacher_student_size_ratio', 'pruning', 'latency_predictor_mape', 'chosen')

def test_quick_run_hands_on_optimization_variants(quick_run):
    "Chapter 03 writes its metrics and a loadable chosen variant for the Conversion and Deployment chapters."
    out, _ = quick_run
    m = json.loads((out/'metrics.json').read_text())['optimization']
    for k in OPTIMIZATION_KEYS: assert k in m, k
    assert m['pruning'] and all({'size_bytes', 'gzip_bytes', 'p50_ms', 'acc'} <= set(v) for v in m['pruning'].values())
    from mobileml_book.optimization import load_variant, variant_file
    net, spec, rec = load_variant(out)
    assert rec and variant_file(out, rec).is_file() and spec.labels

CONVERSION_KEYS = ('agreement', 'phone_c_agreement', 'max_abs_diff', 'accuracy', 'size_bytes', 'latency_p50_ms', 'latency_p90_ms', 'gate')

def test_quick_run_hands_on_conversion_records(quick_run):
    "Chapter 04 gates every export, writes the per-format metrics, and leaves a record (with a true sha256) for every file."
    out, _ = quick_run
    m = json.loads((out/'metrics.json').read_text())['conversion']
    assert m['all_passed'] and {'onnx-fp32', 'tflite-fp32', 'coreml-fp32', 'executorch-fp32'} <= set(m['exports'])
    for name, e in m['exports'].items():
        for k in CONVERSION_KEYS: assert k in e, (name, k)
        assert e['gate'] == ('structural' if name.startswith('coreml') else 'numeric'), name
        if e['gate'] == 'numeric': assert e['agreement'] >= 0.999 and e['latency_p50_ms'] > 0, (name, e)
    from mobileml_book.conversion import load_records, record_path, sha256_file
    recs = load_records(out).records
    assert len(recs) == m['records']
    for r in recs:
        f = record_path(out, r)
        assert f.is_file() and sha256_file(f) == r.sha256 and f.stat().st_size == r.size_bytes, r.name
        assert r.converter['torch'] and r.source['checkpoint_sha256'] and r.fidelity.passed, r.name

def test_deployment_hands_on_one_record_and_remakes_it_when_missing(quick_run, tmp_path):
    "Chapters 05b and 06 read chapter 05's store through `load_deployment`; a copied run without it gets it made with quick settings."
    import shutil
    from mobileml_book.deployment import load_deployment, get_rollout
    out, _ = quick_run
    dep = load_deployment(out)
    assert dep.store.is_dir() and dep.public_key.is_file() and dep.stable != dep.candidate
    assert {a.catalog_id for a in dep.assignment} and any(a.name for a in dep.assignment)
    assert get_rollout(dep.store, dep.model)['stable'] == dep.candidate      # 05b's live rollout finished the candidate
    assert json.loads((out/'metrics.json').read_text())['rollout']['yardstick_verdict']
    cp = tmp_path/'copy'
    shutil.copytree(out, cp, symlinks=True)
    shutil.rmtree(cp/'artifacts'/'deployment')
    again = load_deployment(cp)
    assert again.store.is_relative_to(cp) and again.store.is_dir() and again.model == dep.model

def test_goals_command_reads_the_run(quick_run):
    out, _ = quick_run
    r = cli('goals', out)
    assert r.returncode == 0 and 'student clean accuracy >= 0.90' in r.stdout and 'latency predictor' in r.stdout, r.stdout + r.stderr
    r = cli('goals', out/'nowhere')
    assert r.returncode == 2 and 'no metrics.json' in r.stderr

def test_report_shows_chapter_00_numbers(quick_run):
    out, _ = quick_run
    from mobileml_book.pipeline import _fmt, _flat
    html = (out/'report.html').read_text()
    m = json.loads((out/'metrics.json').read_text())['constraints']
    for k, v in _flat(m):
        assert k in html and _fmt(v) in html, k
    assert html.count('<img') >= 3

def test_executed_notebook_keeps_outputs(quick_run):
    out, _ = quick_run
    nb = nbformat.read(out/'notebooks'/'00_constraints.ipynb', as_version=4)
    assert any(o.get('output_type') == 'display_data' and 'image/png' in o.get('data', {}) for c in nb.cells for o in c.get('outputs', []))
    params = [c for c in nb.cells if 'injected-parameters' in c.metadata.get('tags', [])]
    assert params and 'run_dir' in params[0].source

@pytest.mark.parametrize('args,needles', [
    (['-p', 'no_such_param=1'], ["no chapter has a parameter 'no_such_param'"]),
    (['-p', 'photo_kb=abc'], ["'photo_kb' of chapter 'constraints'", "Allowed: int from 1 to 50000"]),
    (['-p', 'photo_kb=0'], ["'photo_kb' of chapter 'constraints'", "greater than or equal to 1"]),
    (['-p', 'network=6g'], ["'network' of chapter 'constraints'", "one of '3g', '4g', '5g', 'wifi'"]),
    (['-p', 'nochapter.x=1'], ["names chapter 'nochapter'"]),
    (['--only', 'nochapter'], ["--only nochapter: no such chapter"]),
    (['-p', 'source=folder:no/such/dir'], ["'source' of chapter 'data'", "does not exist"]),
    (['-p', 'source=web:x'], ["'source' of chapter 'data'", "matching"]),
    (['-p', 'severities=[1, 7]'], ["'severities' of chapter 'data'"]),
    (['-p', 'source=folder:README.md'], ["'source' of chapter 'data'", "is a file, and folder: needs a folder"]),
    (['-p', 'stages=[25, 5, 100]'], ["chapter 'rollout': stages must ascend and end at 100"]),
    (['-p', 'stages=[1, 50]'], ["chapter 'rollout': stages must ascend and end at 100"]),
    (['-p', 'candidate_version=0.9.0'], ["chapter 'deployment': candidate_version must be greater than version"]),
    (['-p', 'version=1.10.0', '-p', 'candidate_version=1.9.0'], ["candidate_version must be greater than version"]),
    (['-p', 'window_days=3'], ["chapter 'monitoring': window_days must be shorter than fleet_days"]),
    (['-p', 'seed=yes'], ["'seed' of chapter", "YAML reads yes/no/on/off as true/false"]),
    (['-p', 'fleet_days=on'], ["'fleet_days' of chapter 'monitoring'", "write a number"]),
    (['-p', 'seed=010'], ["'seed' of chapter", "010 is 8"]),
    (["-p", "source=folder:tests"], ["'source' of chapter 'data'", "a classifier needs two or more"]),
    (['-p', 'user_condition=fog'], ["'user_condition' of chapter 'ondevice'", "one of 'motion_blur'"]),
    (['-p', 'fl_noise=[]'], ["'fl_noise' of chapter 'ondevice'", "at least 1 item"]),
    (['-p', 'replay_share=1.5'], ["'replay_share' of chapter 'ondevice'", "less than or equal to 0.9"]),
])
def test_bad_parameters_fail_at_once_and_write_nothing(tmp_path, args, needles):
    out = tmp_path/'never'
    r = cli('run', '--out', out, *args)
    assert r.returncode == 2
    for n in needles: assert n in r.stderr, r.stderr
    assert 'Nothing was run or written' in r.stderr
    assert not out.exists()

def test_bad_params_file(tmp_path):
    f = tmp_path/'p.yaml'; f.write_text('constraints:\n  users: many\n')
    r = cli('run', '--out', tmp_path/'never', '--params', f)
    assert r.returncode == 2 and "'users' of chapter 'constraints'" in r.stderr and not (tmp_path/'never').exists()

def test_existing_run_needs_resume_or_force(quick_run):
    out, _ = quick_run
    r = cli('run', '--out', out, '--only', 'constraints')
    assert r.returncode == 2 and 'already holds a run' in r.stderr

# A small book of two chapters, the second failing until a marker file exists: failure and --resume.
def _nb(cells):
    nb = nbformat.v4.new_notebook()
    for src, tags in cells:
        c = nbformat.v4.new_code_cell(src)
        if tags: c.metadata['tags'] = tags
        nb.cells.append(c)
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'python3', 'language': 'python'}
    return nb

@pytest.fixture
def boom_book(tmp_path):
    (tmp_path/'settings.ini').write_text('[DEFAULT]\nlib_name = boombook\nnbs_path = nbs\n')
    pkg = tmp_path/'boombook'; pkg.mkdir(); (pkg/'__init__.py').write_text('')
    (pkg/'ok.py').write_text("from mobileml_book.rundir import ChapterParams, Param\nPARAMS = ChapterParams('ok', Param('n', int, quick=1, lo=0, hi=9))\n")
    (pkg/'boom.py').write_text("from mobileml_book.rundir import ChapterParams, Param\nPARAMS = ChapterParams('boom', Param('marker', str, quick='fixed.txt'))\n")
    nbs = tmp_path/'nbs'; nbs.mkdir()
    nbformat.write(_nb([('#| default_exp ok', None), ("profile = 'quick'\nrun_dir = None\nn = 1", ['parameters']),
                        ("from mobileml_book.rundir import RunDir\nRunDir(run_dir).save_metrics('ok', {'n': n})", None)]), nbs/'00_ok.ipynb')
    nbformat.write(_nb([('#| default_exp boom', None), ("profile = 'quick'\nrun_dir = None\nmarker = 'fixed.txt'", ['parameters']),
                        ("x = 1", None),
                        ("from pathlib import Path\nassert Path(marker).exists(), 'the marker file is missing'", None)]), nbs/'01_boom.ipynb')
    return tmp_path

def test_failing_chapter_then_resume(boom_book):
    out = boom_book/'runs'/'r'
    marker = boom_book/'fixed.txt'
    r = cli('run', '--book', boom_book, '--out', out, '-p', f'marker={marker}', '--no-progress')
    assert r.returncode == 1
    assert 'chapter 01_boom failed' in r.stderr and "assert Path(marker).exists()" in r.stderr
    assert 'the marker file is missing' in r.stderr and '--resume' in r.stderr
    st = json.loads((out/'status.json').read_text())['steps']
    assert st['00_ok']['state'] == 'done' and st['01_boom']['state'] == 'failed'
    assert 'AssertionError' in st['01_boom']['error']
    assert (out/'notebooks'/'01_boom.ipynb').exists()          # the failing notebook is kept, for reading
    first_ok = st['00_ok']['finished']
    marker.write_text('fixed')
    r = cli('run', '--book', boom_book, '--out', out, '-p', f'marker={marker}', '--no-progress', '--resume')
    assert r.returncode == 0, r.stderr
    assert '00_ok: unchanged' in r.stdout and 'skipped' in r.stdout and '01_boom: done' in r.stdout
    st = json.loads((out/'status.json').read_text())['steps']
    assert st['00_ok']['finished'] == first_ok and st['01_boom']['state'] == 'done'
    assert json.loads((out/'metrics.json').read_text()) == {'ok': {'n': 1}}

def test_resume_reruns_a_changed_step_and_everything_after(boom_book):
    out = boom_book/'runs'/'r2'; marker = boom_book/'fixed.txt'; marker.write_text('ok')
    assert cli('run', '--book', boom_book, '--out', out, '-p', f'marker={marker}', '--no-progress').returncode == 0
    r = cli('run', '--book', boom_book, '--out', out, '-p', f'marker={marker}', '-p', 'n=2', '--no-progress', '--resume')
    assert r.returncode == 0 and '00_ok: done' in r.stdout and '01_boom: done' in r.stdout
    assert json.loads((out/'metrics.json').read_text())['ok']['n'] == 2

def test_serve_command_serves_the_run(quick_run):
    "`mobileml-book serve RUN` starts chapter 05's delivery service on the run's store; without a store it says what to run first."
    import socket, subprocess, sys, time, httpx
    from conftest import BIN
    out, _ = quick_run
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    p = subprocess.Popen([str(BIN/'mobileml-book'), 'serve', str(out), '--port', str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try: r = httpx.get(f'http://127.0.0.1:{port}/v1/models', timeout=1); break
            except httpx.TransportError: time.sleep(0.2)
        assert r.status_code == 200 and r.json(), r.text
    finally: p.terminate(); p.wait(10)
    r = cli('serve', out/'nowhere')
    assert r.returncode == 2 and 'no published model' in r.stderr, r.stderr

@pytest.mark.parametrize('key,ok', [('ch', True), ('chapter', False)])
def test_a_chapter_has_one_name(tmp_path, key, ok):
    "A chapter's key (metrics, artifacts, `--only`) is its module's name; a module declaring another key is refused by name."
    from mobileml_book.pipeline import find_chapters
    lib = f"namebook{abs(hash((str(tmp_path), key)))}"
    (tmp_path/'settings.ini').write_text(f'[DEFAULT]\nlib_name = {lib}\nnbs_path = nbs\n')
    (tmp_path/lib).mkdir(); (tmp_path/lib/'__init__.py').write_text('')
    (tmp_path/lib/'ch.py').write_text("from mobileml_book.rundir import ChapterParams, Param\n"
                                      f"PARAMS = ChapterParams({key!r}, Param('n', int, quick=1, lo=0, hi=9))\n")
    (tmp_path/'nbs').mkdir()
    nbformat.write(_nb([('#| default_exp ch', None), ("profile = 'quick'\nrun_dir = None\nn = 1", ['parameters'])]), tmp_path/'nbs'/'00_ch.ipynb')
    if ok: assert [c.key for c in find_chapters(tmp_path)] == ['ch']
    else:
        with pytest.raises(ValueError, match="key 'chapter' is not its module's name 'ch'"): find_chapters(tmp_path)

@pytest.mark.parametrize('budget,ok', [("{'full': 120}", True), ("{'fast': 10}", False), ("{'full': -1}", False)])
def test_a_chapter_declares_its_own_budget(tmp_path, budget, ok):
    "A chapter module's BUDGET_S reaches `find_chapters` (and so `bench` and goals); a malformed one is refused by name."
    from mobileml_book.pipeline import find_chapters
    lib = f"budgetbook{abs(hash((str(tmp_path), budget)))}"                  # a fresh package: no module cache between cases
    (tmp_path/'settings.ini').write_text(f'[DEFAULT]\nlib_name = {lib}\nnbs_path = nbs\n')
    (tmp_path/lib).mkdir(); (tmp_path/lib/'__init__.py').write_text('')
    (tmp_path/lib/'ch.py').write_text("from mobileml_book.rundir import ChapterParams, Param\n"
                                      f"PARAMS = ChapterParams('ch', Param('n', int, quick=1, lo=0, hi=9))\nBUDGET_S = {budget}\n")
    (tmp_path/'nbs').mkdir()
    nbformat.write(_nb([(f'#| default_exp ch', None), ("profile = 'quick'\nrun_dir = None\nn = 1", ['parameters'])]), tmp_path/'nbs'/'00_ch.ipynb')
    if ok: assert [c.budget_s for c in find_chapters(tmp_path)] == [{'full': 120}]
    else:
        with pytest.raises(ValueError, match='BUDGET_S of'): find_chapters(tmp_path)
