"""The book as a website: `mobileml-book docs` builds it offline (the Sphinx route, no Quarto) from a pipeline run,
and a headless Chromium reads it as a user would.

The run is the test session's quick run of the whole book (conftest.quick_run), shared with the pipeline tests. Screenshots go to test-artifacts/.
Browser checks need Chromium (Debian: `apt-get install chromium chromium-driver`, as .ci/run does; or set
MOBILEML_CHROMIUM=/path/to/chromium) and Playwright for Python (in requirements.lock); without them they are skipped."""
import functools, json, os, re, shutil, subprocess, threading, urllib.request
from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlparse, unquote
import pytest
import yaml
from conftest import ROOT, cli
from mobileml_book.docs import book_pages, check_site, quarto_sidebar

ARTIFACTS = ROOT/'test-artifacts'

@pytest.fixture(scope='module')
def run_dir(quick_run):
    "The session's quick pipeline run of every chapter (conftest.quick_run)."
    return quick_run[0]

@pytest.fixture(scope='module')
def site(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('site')/'_docs'
    r = cli('docs', '--run', run_dir, '--out', out, '--engine', 'sphinx', timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r

@pytest.fixture(scope='module')
def pages(): return book_pages(ROOT)

def _chapter_notebooks():
    "The chapters as the file system orders them, then settings.ini's appendix, with the titles their title cells give (independently of mobileml_book.docs)."
    import configparser
    cp = configparser.ConfigParser(); cp.read(ROOT/'settings.ini'); appendix = set(cp['DEFAULT'].get('appendix', '').split())
    out = []
    for p in sorted((ROOT/'nbs').glob('[0-9][0-9]*.ipynb'), key=lambda p: (p.name in appendix, p.name)):
        md = ''.join(''.join(c['source']) for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'markdown')
        out.append((p.name, re.search(r'^#\s+(.+?)\s*$', md, re.M).group(1)))
    return out

def _sidebar(html_text:str)->list[tuple[str, str]]:
    "(text, href) of the links in the Sphinx book theme's sidebar."
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', html_text, re.S).group(0)
    return [(re.sub(r'\s+', ' ', re.sub(r'<[^>]+>', '', t)).strip(), h) for h, t in re.findall(r'<a class="reference internal" href="([^"]*)">(.*?)</a>', nav, re.S)]

def test_docs_builds_offline_with_sphinx(site):
    out, r = site
    assert 'Sphinx' in r.stdout and str(out) in r.stdout
    assert (out/'index.html').is_file() and (out/'search.html').is_file() and (out/'searchindex.js').is_file()

def test_every_page_is_built_with_no_raw_directives_or_fences(site, pages):
    out, _ = site
    assert check_site(out, pages) == []

def test_sidebar_lists_chapters_in_file_order_with_their_titles(site, pages):
    out, _ = site
    side = _sidebar((out/'index.html').read_text())
    titles = [t for t, _ in side]
    chapters = _chapter_notebooks()
    assert [t for _, t in chapters] == [t for t in titles if t in {c for _, c in chapters}], 'chapters out of order in the sidebar'
    assert titles == [p.title for p in pages], 'the sidebar is not book_pages'
    assert 'Run report' in titles and sum(t.startswith('mobileml_book.') for t in titles) >= 4

def test_quarto_route_reads_the_same_list(pages):
    "The Quarto sidebar is generated from the same book_pages, and the root _quarto.yml uses it."
    side = yaml.safe_load(quarto_sidebar(pages))['website']['sidebar']['contents']
    flat = []
    for it in side: flat += [i['text'] for i in it['contents']] if 'section' in it else [it['text']]
    assert flat == [p.title for p in pages]
    q = yaml.safe_load((ROOT/'_quarto.yml').read_text())
    assert 'sidebar.yml' in q['metadata-files'] and q['project']['output-dir'] == '_docs'

def test_nbdev_processing_shows_on_the_pages(site):
    out, _ = site
    data = (out/'data.html').read_text()
    assert 'from fastcore.test import test_eq, test_fail, test_close' not in data      # a `#| hide` cell
    assert 'nbdev-source' in data and 'class="sig' not in data                           # show_doc sections, nbdev's
    assert 'Learning objectives' in data                                                 # the text of the title cell is kept
    docs = (out/'docs.html').read_text()
    assert 'class="admonition' in docs and 'Which route ran?' in docs                   # a Quarto callout, as an admonition

def test_chapters_show_the_runs_outputs(site, run_dir):
    out, _ = site
    data = (out/'data.html').read_text()
    assert re.search(r'<img[^>]+src="_images/[^"]+\.png"', data), 'no plot on the data page'
    assert f'run <code' in data and run_dir.name in data                                # the page names its run

def test_report_and_api_pages(site, run_dir, pages):
    out, _ = site
    rep = (out/'report.html').read_text()
    assert 'Scorecard' in rep and 'data:image/png;base64' in rep
    assert (out/'run'/'report.html').read_bytes() == (run_dir/'report.html').read_bytes()
    mods = [p.module for p in pages if p.kind == 'api']
    assert {'constraints', 'data', 'pipeline', 'rundir', 'docs'} <= set(mods)
    api = (out/'api'/'rundir.html').read_text()
    assert 'RunDir.save_metrics' in api and 'metrics and artifacts live under this name' in api   # docments

def test_make_docs_target():
    r = subprocess.run(['make', '-n', 'docs', 'DOCS_RUN=runs/x'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and 'mobileml-book docs -- --run runs/x' in r.stdout, r.stdout + r.stderr

# ---------------------------------------------------------------- in a browser
CHROMIUM = os.environ.get('MOBILEML_CHROMIUM') or shutil.which('chromium') or shutil.which('chromium-browser')
ENABLE = ("install Debian's Chromium (`sudo apt-get install chromium chromium-driver`, as .ci/run does) "
          "or set MOBILEML_CHROMIUM=/path/to/chromium to run the browser checks of the website")
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']

class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

@pytest.fixture(scope='module')
def server(site):
    out, _ = site
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(out)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True); t.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown(); httpd.server_close()

@pytest.fixture(scope='module')
def browser():
    if not CHROMIUM: pytest.skip(f'no Chromium found: {ENABLE}')
    sync_api = pytest.importorskip('playwright.sync_api', reason='Playwright for Python is missing: `make venv` installs it (requirements.lock)')
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()

def _open(browser, url, problems:list):
    "A new page at `url` that records console errors, page errors, failed or 4xx/5xx requests and any request off this machine."
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    def route(r):
        if urlparse(r.request.url).hostname not in ('127.0.0.1', None): problems.append(f'{url}: external request {r.request.url}'); r.abort()
        else: r.continue_()
    page.route('**/*', route)
    page.on('console', lambda m: m.type == 'error' and problems.append(f'{url}: console error: {m.text}'))
    page.on('pageerror', lambda e: problems.append(f'{url}: page error: {e}'))
    page.on('requestfailed', lambda r: problems.append(f'{url}: request failed: {r.url}'))
    page.on('response', lambda r: r.status >= 400 and problems.append(f'{url}: HTTP {r.status} for {r.url}'))
    page.goto(url, wait_until='load')
    return page

def _ids(base, path, cache={}):
    if path not in cache:
        with urllib.request.urlopen(base + path.lstrip('/')) as f: txt = f.read().decode(errors='replace')
        cache[path] = set(re.findall(r'\s(?:id|name)="([^"]+)"', txt))
    return cache[path]

def test_browser_every_page_loads_cleanly_with_working_links_and_images(browser, server, pages):
    problems, links = [], {}
    for p in pages:
        url = server + p.name + '.html'
        page = _open(browser, url, problems)
        for src, ok, w in page.eval_on_selector_all('img', 'els => els.map(e => [e.currentSrc || e.src, e.complete, e.naturalWidth])'):
            if not (ok and w > 0): problems.append(f'{url}: broken image {src[:120]}')
        for href in page.eval_on_selector_all('a[href]', 'els => els.map(e => e.href)'):
            u = urlparse(href)
            if u.scheme in ('http', 'https') and u.netloc == urlparse(server).netloc: links.setdefault((u.path, unquote(u.fragment)), url)
        page.close()
    for (path, frag), on in sorted(links.items()):
        target = path + ('index.html' if path.endswith('/') else '')
        try: ids = _ids(server, target) if target.endswith('.html') else (urllib.request.urlopen(server + target.lstrip('/')).close() or set())
        except Exception as e: problems.append(f'{on}: broken link {path} ({e})'); continue
        if frag and target.endswith('.html') and frag not in ids: problems.append(f'{on}: broken anchor {path}#{frag}')
    assert not problems, '\n'.join(problems)
    assert len(links) > 20

def test_browser_sidebar_lists_every_chapter_in_order(browser, server):
    page = _open(browser, server + 'index.html', problems := [])
    side = page.eval_on_selector_all('nav.bd-docs-nav a.reference', 'els => els.map(e => e.textContent.trim())')
    assert page.locator('nav.bd-docs-nav').is_visible()
    chapters = [t for _, t in _chapter_notebooks()]
    assert [t for t in side if t in chapters] == chapters
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS/'site-home.png'))
    page.close()
    assert not problems, problems

def test_browser_plot_visible_on_data_and_optimization_pages(browser, server, pages):
    wanted = [p for p in pages if p.kind == 'notebook' and re.search(r'(^|_)(data|optimization)$', Path(p.src).stem)]
    assert 'data' in [p.name for p in wanted]
    for p in wanted:
        page = _open(browser, server + p.name + '.html', problems := [])
        if p.name == 'data':
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS/'site-chapter-data.png'))
        img = page.locator('.cell_output img').first
        img.scroll_into_view_if_needed()
        assert img.is_visible(), f'{p.name}: no visible plot'
        box, w = img.bounding_box(), img.evaluate('e => e.naturalWidth')
        assert w > 100 and box['width'] > 100 and box['height'] > 50, (p.name, w, box)
        if p.name == 'data': page.screenshot(path=str(ARTIFACTS/'site-chapter-data-plot.png'))
        page.close()
        assert not problems, problems

def test_browser_printed_verdicts_and_code_fit_the_page(browser, server, pages):
    "A chapter's printed verdicts (stream output) and code wrap inside the page: no line runs off to a scroll bar."
    wide = []
    for p in [p for p in pages if p.kind == 'notebook']:
        page = _open(browser, server + p.name + '.html', problems := [])
        js = 'els => els.filter(e => e.scrollWidth > e.clientWidth + 2).map(e => e.textContent.slice(0, 80))'
        wide += [f'{p.name}: {t!r}' for t in page.eval_on_selector_all('div.output.stream pre, div.cell_input pre', js)]
        page.close()
        assert not problems, problems
    assert not wide, '\n'.join(wide[:20])

def test_browser_search_finds_a_chapter_term(browser, server):
    page = _open(browser, server + 'search.html?q=augmentation', problems := [])
    page.wait_for_selector('#search-results ul.search li', timeout=20000)
    hits = page.eval_on_selector_all('#search-results ul.search li a', 'els => els.map(e => e.getAttribute("href"))')
    assert any(h.split('#')[0].split('?')[0] == 'data.html' for h in hits), hits
    page.close()
    assert not problems, problems

def test_no_cell_mixes_imports_with_computation():
    "nbdev_docs (the Quarto route) executes every cell that imports; one that also computes breaks the build."
    from mobileml_book.docs import mixed_import_cells
    assert mixed_import_cells(ROOT) == [], "split these cells: imports in a cell of their own"

def test_progress_bars_of_the_run_leave_no_trace_on_the_pages(site, run_dir):
    "The run's notebooks hold tqdm widgets; the pages keep only the notes of real interactive widgets (00's explorer)."
    out, _ = site
    from mobileml_book.docs import WIDGET_NOTE, WIDGET_MIME, is_progress_bar, site_name
    note = WIDGET_NOTE.strip('*')[:40]
    for nb_path in sorted((run_dir/'notebooks').glob('[0-9]*.ipynb')):
        outs = [o for c in json.loads(nb_path.read_text())['cells'] for o in c.get('outputs', [])]
        bars = sum(map(is_progress_bar, outs))
        widgets = sum(WIDGET_MIME in o.get('data', {}) for o in outs) - sum(is_progress_bar(o) for o in outs if WIDGET_MIME in o.get('data', {}))
        page = next(out.rglob(f'{site_name(nb_path.name)}.html'))
        assert page.read_text().count(note) == widgets, (nb_path.name, bars, widgets)
