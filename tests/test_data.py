"Bad photo folders from real users (chapter 01, no run needed): bit depth, oversized files, small classes, caches."
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from mobileml_book.data import (DataError, InputSpec, class_samples, load_image_folder, load_source, to_spec)

def _photos(root:Path, n:dict, size:int=48, seed:int=0)->Path:
    "A folder with `n[class]` distinct RGB photos per class, cut from scikit-image's sample photos."
    rng = np.random.default_rng(seed)
    src = {'cat': skdata.chelsea(), 'coffee': skdata.coffee(), 'rocket': skdata.rocket()}
    for c, k in n.items():
        (root/c).mkdir(parents=True, exist_ok=True)
        img = src[c]
        for i in range(k):
            y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
            Image.fromarray(img[y:y + size, x:x + size]).save(root/c/f'{i:03d}.png')
    return root

@pytest.mark.parametrize('channels', [1, 3])
def test_16_bit_photo_loads_as_its_8_bit_self(tmp_path, channels):
    gray8 = (skdata.camera()[::8, ::8]).astype(np.uint8)                       # a real photo, 64 x 64
    for c in ('a', 'b'):
        (tmp_path/c).mkdir()
        Image.fromarray(gray8).save(tmp_path/c/'eight.png')
        Image.fromarray(gray8.astype(np.uint16)*257).save(tmp_path/c/'sixteen.png')
    ds, rep = load_image_folder(tmp_path, InputSpec(64, channels), min_per_class=2)
    eight, sixteen = ds.x[0].astype(int), ds.x[1].astype(int)                 # sorted: eight.png, sixteen.png
    assert np.abs(eight - sixteen).max() <= 1
    assert abs(sixteen.mean() - gray8.mean()) < 1                              # not white (255)
    assert rep.normalised.get('I;16') == 2

@pytest.mark.parametrize('mode', ['I;16', 'I;16B', 'I', 'F'])
def test_every_high_bit_depth_mode_gives_the_same_pixels(mode):
    gray8 = skdata.camera()[::8, ::8]
    if mode == 'F': im = Image.fromarray(gray8.astype(np.float32)/255)
    elif mode == 'I': im = Image.fromarray(gray8.astype(np.int32)*257)
    else: im = Image.fromarray(gray8.astype(np.uint16)*257).convert('I').convert(mode)
    assert im.mode == mode
    assert np.abs(to_spec(im, InputSpec(64, 1))[..., 0].astype(int) - gray8).max() <= 1

def test_oversized_photo_is_skipped_by_name_and_the_rest_loads(tmp_path):
    root = _photos(tmp_path, {'cat': 12, 'coffee': 12})
    Image.new('L', (14000, 14000)).save(root/'cat'/'huge.png')                # 196 MP: Pillow raised on the folder
    ds, rep = load_image_folder(root, InputSpec(32, 3))
    assert rep.counts == {'cat': 12, 'coffee': 12}
    (path, why), = rep.skipped
    assert path.endswith('huge.png') and '14000 x 14000' in why and '196 MP' in why and '89.5 MP' in why

def test_class_at_the_minimum_runs_through_the_chapter(tmp_path):
    root = _photos(tmp_path, {'cat': 10, 'coffee': 40})
    splits, _ = load_source(f'folder:{root}', InputSpec(32, 3), min_per_class=10)
    for k, v in splits.items(): assert set(v.y) == {0, 1}, k                   # every split holds every class
    xs, titles = class_samples(splits['train'], 8, 0)                          # ValueError before
    n_cat = int((splits['train'].y == 0).sum())
    assert sum(x is not None for x in xs[:8]) == min(8, n_cat) and titles[:8] == ['cat']*8

def test_too_small_a_class_is_named_with_what_it_needs(tmp_path):
    root = _photos(tmp_path, {'cat': 3, 'coffee': 40})
    with pytest.raises(DataError, match=r'at least 6 distinct images.*cat has 3'):
        load_source(f'folder:{root}', InputSpec(32, 3), min_per_class=1)      # before: a class with no test image

def test_thumbnail_caches_are_left_out_and_counted(tmp_path):
    root = _photos(tmp_path, {'cat': 12, 'coffee': 12})
    (root/'cat'/'.thumbnails').mkdir()
    Image.open(root/'cat'/'000.png').resize((16, 16)).save(root/'cat'/'.thumbnails'/'thumb0.jpg')
    (root/'coffee'/'@eaDir'/'000.png').mkdir(parents=True)
    Image.open(root/'coffee'/'000.png').resize((20, 20)).save(root/'coffee'/'@eaDir'/'000.png'/'SYNOFILE_THUMB_M.jpg')
    (root/'@eaDir').mkdir()                                                    # a NAS share's root: not a class
    Image.open(root/'cat'/'001.png').save(root/'@eaDir'/'x.jpg')
    ds, rep = load_image_folder(root, InputSpec(32, 3))
    assert ds.classes == ['cat', 'coffee'] and rep.counts == {'cat': 12, 'coffee': 12}
    assert rep.ignored == {'hidden folder .thumbnails': 1, 'cache folder @eaDir': 2}
    assert 'left out (not photos)' in repr(rep)

def test_heic_photos_load(tmp_path):
    root = _photos(tmp_path, {'cat': 10, 'coffee': 10})
    for c in ('cat', 'coffee'):
        Image.open(root/c/'000.png').save(root/c/'iphone.heic')               # what an iPhone's camera saves
    ds, rep = load_image_folder(root, InputSpec(32, 3))
    assert rep.counts == {'cat': 11, 'coffee': 11} and not rep.skipped

def test_one_class_is_refused_by_name(tmp_path):
    root = _photos(tmp_path, {'cat': 12})
    with pytest.raises(DataError, match=r'has one class sub-folder \(cat\): a classifier needs two classes'):
        load_image_folder(root, InputSpec(32, 3))

def test_batched_answers_no_rows_with_no_rows_of_the_right_shape():
    "Every model and runtime slices through `batched`: an empty batch gives an empty result, with its width and dtype."
    import torch
    from mobileml_book.data import batched, corrupt
    f = lambda b: np.repeat(b.reshape(len(b), -1).sum(1, keepdims=True), 3, 1).astype(np.float32)
    x = np.arange(7*4, dtype=np.uint8).reshape(7, 2, 2)
    assert np.array_equal(batched(f, x, 3), f(x))
    out = batched(f, x[:0], 3)
    assert out.shape == (0, 3) and out.dtype == np.float32
    assert batched(lambda t: t*2, torch.ones(0, 5), 2).shape == (0, 5)
    assert corrupt(np.zeros((0, 16, 16, 1), np.uint8), 'sensor_noise', 2).shape == (0, 16, 16, 1)
    with pytest.raises(ValueError, match='at least 1 row'): batched(f, x, 0)
