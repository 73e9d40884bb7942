"The library is what the notebooks export, and the notebooks are clean: a test fails when the two drift."
import shutil, subprocess, sys, filecmp
from pathlib import Path
from conftest import ROOT, BIN, cli

def _copy_book(tmp):
    for d in ('nbs',): shutil.copytree(ROOT/d, tmp/d, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc'))
    shutil.copy(ROOT/'settings.ini', tmp/'settings.ini')
    shutil.copytree(ROOT/'mobileml_book', tmp/'mobileml_book', ignore=shutil.ignore_patterns('__pycache__'))

def _tree(p): return sorted(str(f.relative_to(p)) for f in p.rglob('*') if f.is_file() and '__pycache__' not in f.parts)

def test_library_is_what_nbdev_export_makes(tmp_path):
    _copy_book(tmp_path)
    shutil.rmtree(tmp_path/'mobileml_book')
    subprocess.run([str(BIN/'nbdev_export')], cwd=tmp_path, check=True, capture_output=True)
    lib, fresh = ROOT/'mobileml_book', tmp_path/'mobileml_book'
    assert _tree(lib) == _tree(fresh), "files in mobileml_book/ differ from what nbdev_export makes: run nbdev_export"
    stale = [f for f in _tree(lib) if (lib/f).read_bytes() != (fresh/f).read_bytes()]
    assert not stale, f"mobileml_book/ is out of sync with nbs/ in {stale}: run nbdev_export (never edit mobileml_book/ by hand)"

def test_notebooks_are_clean(tmp_path):
    _copy_book(tmp_path)
    subprocess.run([str(BIN/'nbdev_clean')], cwd=tmp_path, check=True, capture_output=True)
    dirty = [f for f in _tree(ROOT/'nbs') if f.endswith('.ipynb') and (ROOT/'nbs'/f).read_bytes() != (tmp_path/'nbs'/f).read_bytes()]
    assert not dirty, f"notebooks not cleaned: {dirty}: run nbdev_clean before committing"

def test_readme_is_generated_from_index():
    from mobileml_book.pipeline import build_readme
    assert (ROOT/'README.md').read_text() == build_readme(ROOT, write=False), \
        "README.md is not what nbs/index.ipynb generates: run `make readme`"

def test_readme_has_the_two_commands():
    text = (ROOT/'README.md').read_text()
    assert 'make book' in text and 'make test' in text

def test_source_notebooks_carry_no_outputs():
    "Outputs live in runs (the pipeline executes the chapters); the sources stay small and diffable."
    import nbformat
    with_out = [p.name for p in sorted((ROOT/'nbs').glob('*.ipynb'))
                if any(c.get('outputs') for c in nbformat.read(p, as_version=4).cells)]
    assert not with_out, f"{with_out} carry outputs: clear them (JupyterLab: Edit > Clear Outputs of All Cells) and run nbdev_clean"

def test_chapter_parameters_cells_are_tagged():
    "papermill finds a chapter's parameters by the cell tag `parameters`: nbdev_clean must keep it (allowed_cell_metadata_keys)."
    import nbformat
    nb = nbformat.read(ROOT/'nbs'/'00_constraints.ipynb', as_version=4)
    assert any('parameters' in c.metadata.get('tags', []) for c in nb.cells)
