"""Photo folders like a team's own, from the Data chapter's `sample_photo_folder` (scikit-image's bundled photos):
crops of one photo per class, each corrupted the way phone photos are, with the stray files real folders hold."""
from pathlib import Path
from mobileml_book.data import sample_photo_folder

def make_photo_folder(root, classes=('cat', 'coffee', 'rocket', 'astronaut'), n:int=30, side=(64, 160),
                      grey:bool=False, seed:int=0, extras:bool=True)->Path:
    "`n` photos per class as a team's folder holds them, stray files included (`extras`)."
    return sample_photo_folder(root, classes, n, side, grey, seed, extras)
