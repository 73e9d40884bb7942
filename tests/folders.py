"""Photo folders like a team's own, built from scikit-image's sample photos: crops of one photo per class, each
corrupted the way phone photos are, in mixed formats and sizes, with the stray files real folders hold."""
from pathlib import Path
import numpy as np
from PIL import Image, ImageFilter
from skimage import data as skdata

PHOTOS = {'cat': 'chelsea', 'coffee': 'coffee', 'rocket': 'rocket', 'astronaut': 'astronaut',
          'coins': 'coins', 'text': 'text', 'moon': 'moon', 'camera': 'camera', 'page': 'page'}

def _corrupt(im:Image.Image, rng)->Image.Image:
    "One phone-style corruption at random: blur, dim, noise, a JPEG-ish softening, or none."
    k = rng.integers(5)
    if k == 0: return im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
    a = np.asarray(im).astype(np.float32)
    if k == 1: a = a*rng.uniform(0.3, 0.8)
    elif k == 2: a = a + rng.normal(0, rng.uniform(5, 20), a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))

def make_photo_folder(root, classes=('cat', 'coffee', 'rocket', 'astronaut'), n:int=30, side=(64, 160),
                      grey:bool=False, seed:int=0, extras:bool=True)->Path:
    "`n` photos per class: random crops (sides in `side`) of the class's sample photo, corrupted, as JPEG or PNG."
    rng, root = np.random.default_rng(seed), Path(root)
    for c in classes:
        src = getattr(skdata, PHOTOS[c])()
        src = src if src.ndim == 3 else np.repeat(src[..., None], 3, -1)
        (root/c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            s = int(rng.integers(*side)); s = min(s, *src.shape[:2])
            h = min(src.shape[0], int(s*rng.uniform(0.75, 1.0)))
            y, x = rng.integers(0, src.shape[0] - h + 1), rng.integers(0, src.shape[1] - s + 1)
            im = _corrupt(Image.fromarray(src[y:y + h, x:x + s]), rng)
            if grey: im = im.convert('L')
            im.save(root/c/(f'{i:03d}.jpg' if i % 3 else f'{i:03d}.png'), **({'quality': 85} if i % 3 else {}))
    if extras:                                              # what real folders hold besides photos
        c0 = classes[0]
        (root/c0/'notes.txt').write_text('who labelled these')
        (root/c0/'.DS_Store').write_bytes(b'\0'*32)
        (root/c0/'@eaDir'/'000.png').mkdir(parents=True)
        Image.open(root/c0/'000.png').resize((24, 24)).save(root/c0/'@eaDir'/'000.png'/'SYNOFILE_THUMB_S.jpg')
        big = np.asarray(Image.open(root/classes[-1]/'001.jpg').convert('L'), dtype=np.uint16)*257
        Image.fromarray(big).save(root/classes[-1]/'scan16.png')   # a 16-bit scan
    return root
