"""Data preparation of the demo (on a small wheel made by the test)."""
import io
import json
import os.path as osp
import zipfile

import numpy as np
import pytest
from PIL import Image

from fgd_mmrazor.demo import trees
from fgd_mmrazor.demo.trees import prepare_trees, tile_boxes, tile_origins


def voc(boxes, w, h):
    objs = ''.join(
        f'<object><name>Tree</name><bndbox><xmin>{b[0]}</xmin>'
        f'<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax>'
        '</bndbox></object>' for b in boxes)
    return (f'<annotation><size><width>{w}</width><height>{h}</height>'
            f'</size>{objs}</annotation>').encode()


def png(w, h, seed):
    arr = np.random.RandomState(seed).randint(0, 255, (h, w, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format='PNG')
    return buf.getvalue(), arr


@pytest.fixture
def fake_wheel(tmp_path):
    """A wheel with a small YELL crop2 (700 x 2300) and OSBS_029."""
    path = str(tmp_path / 'deepforest-2.1.0-py3-none-any.whl')
    yell_png, yell = png(700, 2300, 0)
    osbs_png, _ = png(400, 400, 1)
    yell_boxes = [
        (10, 10, 50, 50),  # tile (0, 0)
        (300, 300, 340, 340),  # straddles x=320 and y=320: 1/4 in each
        (100, 1950, 140, 1990),  # val (y >= 1920)
        (600, 2260, 660, 2299),  # last row (shifted tile), val
    ]
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr(f'deepforest/data/{trees.YELL}.png', yell_png)
        zf.writestr(f'deepforest/data/{trees.YELL}.xml',
                    voc(yell_boxes, 700, 2300))
        zf.writestr('deepforest/data/OSBS_029.png', osbs_png)
        zf.writestr('deepforest/data/OSBS_029.xml',
                    voc([(1, 2, 30, 40)], 400, 400))
        # the held-out image must never be read
        zf.writestr(f'deepforest/data/{trees.HELD_OUT}.png', b'not read')
    return path, yell


def test_tile_origins_cover_without_partial_tiles():
    assert tile_origins(700) == [0, 320, 380]
    assert tile_origins(320) == [0]
    assert tile_origins(2472) == [0, 320, 640, 960, 1280, 1600, 1920, 2152]


def test_tile_boxes_clips_and_drops_slivers():
    boxes = np.array([[300., 300., 340., 340.], [310., 0., 400., 40.]])
    # 1/4 of box 0 inside the tile (0,0,320,320): dropped at 0.5
    assert len(tile_boxes(boxes, 0, 0, 320, 320)) == 0
    # box 1: 10/90 visible in tile 0, 80/90 in the tile at x=320
    kept = tile_boxes(boxes, 320, 0, 320, 320)
    assert kept.tolist() == [[0., 0., 80., 40.]]
    assert len(tile_boxes(np.zeros((0, 4)), 0, 0, 320, 320)) == 0


def test_prepare_is_deterministic_and_idempotent(fake_wheel, tmp_path):
    wheel, yell = fake_wheel
    out = str(tmp_path / 'trees')
    m1 = prepare_trees(out, wheel=wheel, sources=[trees.YELL, 'OSBS_029'])
    # YELL: 8 tile rows (0..1600 train; 1920, 1980 val) x 3 columns
    rows = tile_origins(2300)
    assert rows == [0, 320, 640, 960, 1280, 1600, 1920, 1980]
    assert m1['counts']['train']['images'] == 6 * 3 + 1  # + OSBS_029
    assert m1['counts']['val']['images'] == 2 * 3
    with open(osp.join(out, 'val', 'annotations.json')) as f:
        val = json.load(f)
    assert val['categories'] == [dict(id=1, name='Tree')]
    # the box at y=1950 is in tile y=1920 (only 1/4 of it in y=1980); the
    # box at the bottom-right corner is in the shifted last tile
    names = {i['id']: i['file_name'] for i in val['images']}
    got = sorted((names[a['image_id']], a['bbox'])
                 for a in val['annotations'])
    # (and 40 of its 60 px width lie in the tile at x=320 too: kept)
    assert got == [(f'{trees.YELL}_y1920_x0000.png', [100., 30., 40., 40.]),
                   (f'{trees.YELL}_y1980_x0320.png', [280., 280., 40., 39.]),
                   (f'{trees.YELL}_y1980_x0380.png', [220., 280., 60., 39.])]
    # tiles are the image's pixels
    tile = np.asarray(Image.open(
        osp.join(out, 'val', 'images', f'{trees.YELL}_y1980_x0320.png')))
    assert np.array_equal(tile, yell[1980:2300, 320:640])
    # second call: same manifest, nothing rewritten
    mtime = osp.getmtime(osp.join(out, 'manifest.json'))
    m2 = prepare_trees(out, wheel=wheel, sources=[trees.YELL, 'OSBS_029'])
    assert m2 == m1
    assert osp.getmtime(osp.join(out, 'manifest.json')) == mtime
    # a rebuild gives identical annotations
    m3 = prepare_trees(out, wheel=wheel, sources=[trees.YELL, 'OSBS_029'],
                       force=True)
    with open(osp.join(out, 'val', 'annotations.json')) as f:
        assert json.load(f) == val
    assert m3['counts'] == m1['counts']


def test_held_out_image_is_refused(fake_wheel, tmp_path):
    wheel, _ = fake_wheel
    with pytest.raises(ValueError, match='unknown sources'):
        prepare_trees(str(tmp_path / 'x'), wheel=wheel,
                      sources=[trees.HELD_OUT])
    with zipfile.ZipFile(wheel) as zf:
        with pytest.raises(RuntimeError, match='held out'):
            trees._load(zf, trees.HELD_OUT)


def _fold_tiles(out, fold, split):
    with open(trees.fold_paths(out, fold)[split]) as f:
        coco = json.load(f)
    return coco, [i['file_name'] for i in coco['images']]


def _origin(file_name):
    """(y0, x0) of a YELL tile's file name."""
    stem = osp.basename(file_name)[:-len('.png')]
    y, x = stem.rsplit('_y', 1)[1].split('_x')
    return int(y), int(x)


def test_folds_cover_every_tile_once_in_disjoint_bands(fake_wheel,
                                                       tmp_path):
    wheel, _ = fake_wheel
    out = str(tmp_path / 'trees')
    manifest = prepare_trees(out, wheel=wheel,
                             sources=[trees.YELL, 'OSBS_029'])
    # Fold 0 is exactly the default split.
    for split in ('train', 'val'):
        coco, names = _fold_tiles(out, '0', split)
        with open(osp.join(out, split, 'annotations.json')) as f:
            plain = json.load(f)
        assert sorted(osp.basename(n) for n in names) == sorted(
            i['file_name'] for i in plain['images'])
        assert sorted(a['bbox'] for a in coco['annotations']) == sorted(
            a['bbox'] for a in plain['annotations'])
        assert manifest['folds']['0'][split] == manifest['counts'][split]
        for name in names:  # the paths resolve from the data root
            assert osp.isfile(osp.join(out, name))
    rows = tile_origins(2300)
    seen = []
    for fold in trees.STRIP_FOLDS:
        _, val = _fold_tiles(out, fold, 'val')
        _, train = _fold_tiles(out, fold, 'train')
        assert 'train/images/OSBS_029.png' in train
        val_rows = sorted({_origin(n)[0] for n in val})
        # contiguous whole rows: a band, not a checkerboard
        i = rows.index(val_rows[0])
        assert val_rows == rows[i:i + len(val_rows)]
        assert len(val) == len(val_rows) * 3
        for v in val:
            vy, vx = _origin(v)
            for t in train:
                if trees.YELL not in t:
                    continue
                ty, tx = _origin(t)
                assert not (abs(vy - ty) < trees.TILE and
                            abs(vx - tx) < trees.TILE), (fold, v, t)
        seen += val
    yell = [n for n in seen if trees.YELL in n]
    assert len(yell) == len(set(yell)) == len(rows) * 3
    # The site fold: OSBS is val, every YELL tile trains.
    _, val = _fold_tiles(out, 'osbs', 'val')
    _, train = _fold_tiles(out, 'osbs', 'train')
    assert val == ['train/images/OSBS_029.png']
    assert len(train) == len(rows) * 3
