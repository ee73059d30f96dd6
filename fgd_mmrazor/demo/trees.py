"""Tiled COCO-format tree-crown data from deepforest's bundled NEON tiles.

deepforest 2.1.0 (MIT) ships NEON aerial RGB images (10 cm/pixel) with
Pascal VOC boxes of tree crowns under ``deepforest/data/``. This module gets
that wheel from the package registry (``pip download --no-deps``), reads the
images it is allowed to use and writes 320 x 320 tiles at native resolution
as two COCO sets with one class, ``Tree``:

============  ==========================================================
split         source
============  ==========================================================
train         ``2019_YELL_2_528000_4978000_image_crop2``: tile rows 0-5
              (y < 1920 px), plus ``OSBS_029`` and ``SOAP_061`` (whole
              400 x 400 images; SOAP's Alive/Dead labels become Tree)
val           ``2019_YELL_2_528000_4978000_image_crop2``: tile rows 6-7
              (y >= 1920 px), spatially disjoint from the train tiles
============  ==========================================================

``2019_YELL_2_541000_4977000_image_crop`` (and ``example.csv``, which
annotates it) is held out for acceptance evaluation and is never read.

**Folds** (``folds/<name>/train.json`` and ``val.json``, over the same
tiles; ``file_name`` is relative to the output root). Every annotated
tile is a val tile in exactly one strip fold; a fold's val tiles are
contiguous bands of whole tile rows, disjoint from its train tiles:

============  ==========================================================
fold          val (the rest is train)
============  ==========================================================
``0``         YELL crop2 tile rows 6-7: exactly ``val/`` above
``1``         YELL crop2 tile rows 4-5
``2``         YELL crop2 tile rows 2-3
``3``         YELL crop2 tile rows 0-1
``osbs``      ``OSBS_029`` (another NEON site)
``soap``      ``SOAP_061`` (another NEON site)
============  ==========================================================

The site folds test what distillation promises: a scene the student never
saw.

A box is kept in a tile when at least half of its area lies inside; it is
clipped to the tile. The output is deterministic (fixed tiling, sorted ids,
no randomness) and idempotent: a ``manifest.json`` with the source wheel's
SHA-256 marks a finished build, and a second call returns at once.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .wheels import default_cache_dir, fetch_wheel, sha256_file

__all__ = [
    'DEEPFOREST_VERSION', 'HELD_OUT', 'SOURCES', 'TILE', 'prepare_trees',
    'tile_boxes', 'fetch_deepforest_wheel', 'STRIP_FOLDS', 'SITE_FOLDS',
    'FOLDS', 'fold_paths', 'strip_bands'
]

DEEPFOREST_VERSION = '2.1.0'
HELD_OUT = '2019_YELL_2_541000_4977000_image_crop'
TILE = 320
VAL_FROM_Y = 1920  # YELL crop2 tile rows starting at y >= 1920 are val
MIN_VISIBLE = 0.5
YELL = '2019_YELL_2_528000_4978000_image_crop2'
# name -> how it is used
SOURCES: Dict[str, str] = {
    YELL: 'tiled',
    'OSBS_029': 'train',
    'SOAP_061': 'train',
}
FORMAT_VERSION = 2
#: Strip folds of the tiled image (fold 0: today's val rows) and site folds
#: (fold name -> the image that is val).
STRIP_FOLDS = ('0', '1', '2', '3')
SITE_FOLDS = {'osbs': 'OSBS_029', 'soap': 'SOAP_061'}
FOLDS = STRIP_FOLDS + tuple(SITE_FOLDS)


def strip_bands(rows: Sequence[int],
                num_folds: int = len(STRIP_FOLDS)) -> List[List[int]]:
    """The tile-row origins of each strip fold's val band: fold 0 the rows
    at ``VAL_FROM_Y`` and below (the default split), the rows above split
    into ``num_folds - 1`` contiguous bands, from the bottom up."""
    first = [y for y in rows if y >= VAL_FROM_Y]
    rest = [y for y in rows if y < VAL_FROM_Y]
    bands = [list(b) for b in np.array_split(rest[::-1], num_folds - 1)]
    return [first] + [sorted(int(y) for y in b) for b in bands]


def fold_paths(root: str, fold: str) -> Dict[str, str]:
    """The annotation files of ``fold`` under the data ``root``."""
    if fold not in FOLDS:
        raise KeyError(f'unknown fold {fold!r}; the folds are {FOLDS}')
    return {split: osp.join(root, 'folds', fold, f'{split}.json')
            for split in ('train', 'val')}


def fetch_deepforest_wheel(cache_dir: str) -> str:
    """Path of the deepforest wheel, downloaded once into ``cache_dir``."""
    return fetch_wheel('deepforest', DEEPFOREST_VERSION, cache_dir)


def _read_voc(xml_bytes: bytes) -> np.ndarray:
    """(N, 4) float xyxy boxes of a Pascal VOC annotation."""
    root = ET.fromstring(xml_bytes)
    boxes = []
    for obj in root.findall('object'):
        bnd = obj.find('bndbox')
        boxes.append([
            float(bnd.find(k).text)
            for k in ('xmin', 'ymin', 'xmax', 'ymax')
        ])
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def tile_origins(length: int, tile: int = TILE) -> List[int]:
    """Start offsets covering ``length`` with full tiles; the last tile is
    shifted back to end at the border (no padding, no partial tile)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tile_boxes(boxes: np.ndarray, x0: int, y0: int, w: int, h: int,
               min_visible: float = MIN_VISIBLE) -> np.ndarray:
    """Boxes of one tile, in tile coordinates, clipped.

    A box is kept when at least ``min_visible`` of its area is inside.
    """
    if len(boxes) == 0:
        return boxes.reshape(0, 4)
    clipped = boxes.copy()
    clipped[:, [0, 2]] = np.clip(boxes[:, [0, 2]], x0, x0 + w) - x0
    clipped[:, [1, 3]] = np.clip(boxes[:, [1, 3]], y0, y0 + h) - y0
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    vis = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (area > 0) & (vis >= min_visible * area)
    return clipped[keep]


class _CocoWriter:

    def __init__(self, root: str, split: str):
        self.root, self.split = root, split
        self.img_dir = osp.join(root, split, 'images')
        os.makedirs(self.img_dir, exist_ok=True)
        self.images: List[dict] = []
        self.annotations: List[dict] = []
        self.folds: List[str] = []  # the val fold of each image

    def add(self, name: str, image: np.ndarray, boxes: np.ndarray,
            fold: str = '') -> None:
        from PIL import Image
        self.folds.append(fold)
        img_id = len(self.images) + 1
        file_name = f'{name}.png'
        Image.fromarray(image).save(osp.join(self.img_dir, file_name))
        h, w = image.shape[:2]
        self.images.append(
            dict(id=img_id, file_name=file_name, width=w, height=h))
        for x1, y1, x2, y2 in boxes.tolist():
            bw, bh = x2 - x1, y2 - y1
            self.annotations.append(
                dict(
                    id=len(self.annotations) + 1,
                    image_id=img_id,
                    category_id=1,
                    bbox=[x1, y1, bw, bh],
                    area=bw * bh,
                    iscrowd=0))

    def write(self) -> Dict[str, int]:
        return _write_coco(
            osp.join(self.root, self.split, 'annotations.json'),
            self.images, self.annotations)


def _write_coco(path: str, images: List[dict],
                annotations: List[dict]) -> Dict[str, int]:
    coco = dict(
        info=dict(
            description='NEON tree crowns from deepforest '
            f'{DEEPFOREST_VERSION} (MIT), {TILE}px tiles'),
        images=images,
        annotations=annotations,
        categories=[dict(id=1, name='Tree')])
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(coco, f)
    return dict(images=len(images), boxes=len(annotations))


def _write_folds(root: str, writers: Dict[str, '_CocoWriter']) -> dict:
    """``folds/<fold>/{train,val}.json`` from the images of both splits
    (ids renumbered per file; ``file_name`` relative to ``root``)."""
    tiles = []  # (fold, image, annotations)
    for split, writer in writers.items():
        by_image: Dict[int, List[dict]] = {}
        for ann in writer.annotations:
            by_image.setdefault(ann['image_id'], []).append(ann)
        for fold, image in zip(writer.folds, writer.images):
            tiles.append((fold, dict(
                image, file_name=f'{split}/images/{image["file_name"]}'),
                          by_image.get(image['id'], [])))
    counts = {}
    for fold in FOLDS:
        counts[fold] = {}
        for split in ('train', 'val'):
            images, anns = [], []
            for tile_fold, image, tile_anns in tiles:
                if (tile_fold == fold) != (split == 'val'):
                    continue
                images.append(dict(image, id=len(images) + 1))
                for ann in tile_anns:
                    anns.append(dict(ann, id=len(anns) + 1,
                                     image_id=len(images)))
            counts[fold][split] = _write_coco(
                fold_paths(root, fold)[split], images, anns)
    return counts


def _load(zf: zipfile.ZipFile, name: str) -> Tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    if HELD_OUT in name:
        raise RuntimeError(f'{HELD_OUT} is held out for acceptance')
    with zf.open(f'deepforest/data/{name}.png') as f:
        image = np.asarray(Image.open(f).convert('RGB'))
    boxes = _read_voc(zf.read(f'deepforest/data/{name}.xml'))
    return image, boxes


def prepare_trees(out_dir: str,
                  cache_dir: Optional[str] = None,
                  wheel: Optional[str] = None,
                  sources: Sequence[str] = tuple(SOURCES),
                  force: bool = False) -> dict:
    """Build (or reuse) the tiled train/val COCO sets.

    Args:
        out_dir (str): Output root; gets ``train/`` and ``val/``, each with
            ``images/`` and ``annotations.json``, and ``manifest.json``.
        cache_dir (str, optional): Where the wheel is downloaded. Defaults
            to ``$FGD_CACHE`` or ``~/.cache/fgd_mmrazor``.
        wheel (str, optional): A local deepforest wheel (skips download).
        sources (Sequence[str]): Images to use (a subset, for tests).
        force (bool): Rebuild even if the manifest matches.

    Returns:
        dict: The manifest (counts of images and boxes per split, and per
        fold and split under ``folds``).
    """
    wheel = wheel or fetch_deepforest_wheel(cache_dir or default_cache_dir())
    sha = sha256_file(wheel)
    key = dict(
        format=FORMAT_VERSION,
        wheel_sha256=sha,
        sources=sorted(sources),
        tile=TILE,
        val_from_y=VAL_FROM_Y,
        min_visible=MIN_VISIBLE,
        folds=list(FOLDS))
    manifest_path = osp.join(out_dir, 'manifest.json')
    if not force and osp.isfile(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get('key') == key:
            return manifest
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f'unknown sources {sorted(unknown)}')

    os.makedirs(osp.dirname(osp.abspath(out_dir)), exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix='.trees-', dir=osp.dirname(osp.abspath(out_dir)))
    writers = dict(train=_CocoWriter(tmp, 'train'),
                   val=_CocoWriter(tmp, 'val'))
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(sources):
            image, boxes = _load(zf, name)
            if SOURCES[name] != 'tiled':
                site = {v: k for k, v in SITE_FOLDS.items()}.get(name, '')
                writers[SOURCES[name]].add(name, image, boxes, site)
                continue
            h, w = image.shape[:2]
            rows = tile_origins(h)
            band = {y: str(i) for i, ys in enumerate(strip_bands(rows))
                    for y in ys}
            for y0 in rows:
                split = 'val' if y0 >= VAL_FROM_Y else 'train'
                for x0 in tile_origins(w):
                    tile = image[y0:y0 + TILE, x0:x0 + TILE]
                    writers[split].add(
                        f'{name}_y{y0:04d}_x{x0:04d}', tile,
                        tile_boxes(boxes, x0, y0, TILE, TILE), band[y0])
    counts = {split: wr.write() for split, wr in writers.items()}
    fold_counts = _write_folds(tmp, writers)
    manifest = dict(
        key=key,
        counts=counts,
        folds=fold_counts,
        source=f'deepforest=={DEEPFOREST_VERSION}',
        held_out=HELD_OUT)
    with open(osp.join(tmp, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
    # Swap in the finished build (a crash leaves the old one intact).
    if osp.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return manifest
