"The installed environment is the pinned one: the CPU torch build, no CUDA packages, no torchvision, the lock's versions."
import re
from importlib import metadata
from conftest import ROOT

def _installed(): return {d.metadata['Name'].lower().replace('_', '-'): d.version for d in metadata.distributions()}

def test_torch_is_the_local_cpu_build():
    assert metadata.version('torch') == '2.13.0+cpu'

def test_no_cuda_packages_and_no_torchvision():
    inst = _installed()
    bad = sorted(n for n in inst if n.startswith('nvidia-') or n in ('torchvision', 'torchaudio', 'triton'))
    assert not bad, f"packages that must not be installed: {bad}"
    pinned = [l.split('==')[0].lower() for l in (ROOT/'requirements.lock').read_text().splitlines() if '==' in l and not l.startswith('#')]
    assert not [n for n in pinned if n.startswith('nvidia-') or n in ('torchvision', 'torchaudio', 'triton')]

def test_installed_versions_match_the_lock():
    inst = _installed()
    wrong = []
    for line in (ROOT/'requirements.lock').read_text().splitlines():
        m = re.match(r'^([A-Za-z0-9_.\-]+)==(\S+)', line)
        if not m: continue
        name = m.group(1).lower().replace('_', '-').replace('.', '-')
        have = inst.get(name) or inst.get(m.group(1).lower().replace('_', '-'))
        if have != m.group(2): wrong.append(f"{m.group(1)}: lock {m.group(2)}, installed {have}")
    assert not wrong, "the venv differs from requirements.lock (re-run `make venv` after `rm .venv/.installed`):\n" + '\n'.join(wrong)

def test_nbdev_is_the_2_4_line():
    assert metadata.version('nbdev').startswith('2.4.')
    fc = tuple(int(x) for x in metadata.version('fastcore').split('.')[:2])
    assert fc < (1, 13)
