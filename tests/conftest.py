"""Shared fixtures: tiny COCO-format data made by the tests, config paths."""
import json
import os.path as osp

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs')


def make_tiny_coco(root, num_images=4, size=(96, 128), seed=0,
                   empty_every=0, class_names=('Tree', )):
    """Write ``num_images`` noise images with bright boxes and their COCO
    annotations (class id 1, the first of ``class_names``) under ``root``;
    return the ann file path.

    Every ``empty_every``-th image has no box (0: none empty).
    """
    from PIL import Image
    rng = np.random.RandomState(seed)
    img_dir = osp.join(root, 'images')
    import os
    os.makedirs(img_dir, exist_ok=True)
    h, w = size
    images, anns = [], []
    for i in range(num_images):
        img = rng.randint(0, 80, (h, w, 3)).astype(np.uint8)
        n = 0 if empty_every and i % empty_every == 0 else rng.randint(1, 4)
        for _ in range(n):
            bw, bh = rng.randint(12, 40), rng.randint(12, 40)
            x, y = rng.randint(0, w - bw), rng.randint(0, h - bh)
            img[y:y + bh, x:x + bw] = rng.randint(150, 255, 3)
            anns.append(
                dict(id=len(anns) + 1, image_id=i + 1, category_id=1,
                     bbox=[float(x), float(y), float(bw), float(bh)],
                     area=float(bw * bh), iscrowd=0))
        name = f'{i:03d}.png'
        Image.fromarray(img).save(osp.join(img_dir, name))
        images.append(dict(id=i + 1, file_name=name, width=w, height=h))
    ann_file = osp.join(root, 'annotations.json')
    with open(ann_file, 'w') as f:
        json.dump(
            dict(images=images, annotations=anns,
                 categories=[
                     dict(id=i + 1, name=n) for i, n in enumerate(class_names)
                 ]), f)
    return ann_file


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory):
    """Root of a 4-image one-class COCO set (one image without boxes)."""
    root = str(tmp_path_factory.mktemp('tiny_coco'))
    make_tiny_coco(root, num_images=4, empty_every=3)
    return root


@pytest.fixture(scope='session')
def tiny_coco80(tmp_path_factory):
    """The same with COCO's 80 categories (boxes are 'person'), for the
    80-class COCO configs."""
    from mmyolo.datasets import YOLOv5CocoDataset
    root = str(tmp_path_factory.mktemp('tiny_coco80'))
    make_tiny_coco(root, num_images=4, empty_every=3,
                   class_names=YOLOv5CocoDataset.METAINFO['classes'])
    return root


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    """A checkpoint of a freshly initialised YOLOv5-n (the model tests'
    teacher) and that model."""
    import torch
    from mmengine.hub import get_model

    from .test_models.conftest import YOLOV5_N
    path = str(tmp_path_factory.mktemp('ckpt') / 'teacher.pth')
    model = get_model(YOLOV5_N, pretrained=False)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path, model


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip where torch sees no GPU."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU')
    for item in items:
        if 'cuda' in item.keywords:
            item.add_marker(skip)
