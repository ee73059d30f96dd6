"""imitation_mask(s) against an independent brute-force implementation."""
import math
import random

import pytest
import torch

from fgd_mmrazor import gt_box_masks, imitation_mask, imitation_masks


def brute_iou(box, anchor):
    """IoU of two xyxy boxes, plain Python floats."""
    iw = max(min(box[2], anchor[2]) - max(box[0], anchor[0]), 0.0)
    ih = max(min(box[3], anchor[3]) - max(box[1], anchor[1]), 0.0)
    inter = iw * ih
    area_b = (box[2] - box[0]) * (box[3] - box[1])
    area_a = (anchor[2] - anchor[0]) * (anchor[3] - anchor[1])
    return inter / (area_b + area_a - inter)


def brute_masks(gt_bboxes, sizes, strides, anchors, psi, joint, offset=0.5):
    """Loops over images, boxes, levels, cells and anchors (the definition).
    """
    out = [[[[False] * w for _ in range(h)] for _ in gt_bboxes]
           for h, w in sizes]
    for b, boxes in enumerate(gt_bboxes):
        for box in boxes.tolist():
            if not (box[2] > box[0] and box[3] > box[1]):
                continue
            ious = []  # per level: {(i, j, a): iou}
            for (h, w), stride, level_anchors in zip(sizes, strides,
                                                     anchors):
                sx, sy = (stride, stride) if isinstance(stride,
                                                        int) else stride
                level = {}
                for i in range(h):
                    for j in range(w):
                        cx, cy = (j + offset) * sx, (i + offset) * sy
                        for a, (aw, ah) in enumerate(level_anchors.tolist()):
                            level[i, j, a] = brute_iou(
                                box, (cx - aw / 2, cy - ah / 2, cx + aw / 2,
                                      cy + ah / 2))
                ious.append(level)
            joint_max = max(max(level.values()) for level in ious)
            for lvl, level in enumerate(ious):
                best = joint_max if joint else max(level.values())
                for (i, j, _), iou in level.items():
                    if iou > psi * best:
                        out[lvl][b][i][j] = True
    return [torch.tensor(m, dtype=torch.bool).view(len(gt_bboxes), h, w)
            for m, (h, w) in zip(out, sizes)]


def random_boxes(rng, n, img_w, img_h, allow_bad=True):
    boxes = []
    for _ in range(n):
        kind = rng.random() if allow_bad else 1.0
        if kind < 0.1:  # degenerate: zero width or negative height
            x, y = rng.uniform(0, img_w), rng.uniform(0, img_h)
            boxes.append([x, y, x, y + rng.uniform(-5, 5)])
            continue
        w = rng.uniform(2, img_w * 0.8)
        h = rng.uniform(2, img_h * 0.8)
        if kind < 0.25:  # partly or fully outside the image
            x = rng.uniform(-w - 20, img_w + 20)
            y = rng.uniform(-h - 20, img_h + 20)
        else:
            x = rng.uniform(0, img_w - w)
            y = rng.uniform(0, img_h - h)
        boxes.append([x, y, x + w, y + h])
    return torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4)


ANCHORS = [
    torch.tensor([[10., 13.], [16., 30.], [33., 23.]], dtype=torch.float64),
    torch.tensor([[30., 61.], [62., 45.], [59., 119.]], dtype=torch.float64),
]


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('joint', [True, False])
@pytest.mark.parametrize('psi', [0.3, 0.5, 0.8, 1.0])
def test_matches_brute_force(seed, joint, psi):
    rng = random.Random(seed)
    img_w, img_h = 96, 64  # rectangular maps
    strides = [8, (16, 16)]
    sizes = [(img_h // 8, img_w // 8), (img_h // 16, img_w // 16)]
    # Includes an image without boxes and varying box counts.
    gt = [random_boxes(rng, rng.choice([0, 1, 3, 7]), img_w, img_h)
          for _ in range(3)]
    expected = brute_masks(gt, sizes, strides, ANCHORS, psi, joint)
    got = imitation_masks(gt, sizes, strides, ANCHORS, psi=psi, joint=joint)
    for e, g in zip(expected, got):
        assert g.dtype == torch.bool
        assert torch.equal(e, g)


@pytest.mark.parametrize('offset', [0.0, 0.25])
@pytest.mark.parametrize('joint', [True, False])
def test_anchor_centre_offset_matches_brute_force(offset, joint):
    rng = random.Random(7)
    sizes, strides = [(8, 12), (4, 6)], [8, (16, 16)]
    gt = [random_boxes(rng, n, 96, 64) for n in (5, 0, 9)]
    expected = brute_masks(gt, sizes, strides, ANCHORS, 0.5, joint, offset)
    got = imitation_masks(gt, sizes, strides, ANCHORS, psi=0.5, joint=joint,
                          center_offset=offset)
    for e, g in zip(expected, got):
        assert torch.equal(e, g)


def test_anisotropic_stride_and_float32():
    rng = random.Random(11)
    gt = [random_boxes(rng, 6, 120, 40, allow_bad=False) for _ in range(2)]
    sizes, strides = [(5, 10)], [(12, 8)]  # sx=12, sy=8
    expected = brute_masks(gt, sizes, strides, ANCHORS[:1], 0.5, False)
    got = imitation_masks([g.float() for g in gt], sizes, strides,
                          [ANCHORS[0].float()], psi=0.5, joint=False)
    # float32 rounding could flip a cell exactly at the threshold; random
    # boxes make that practically impossible, so demand equality.
    assert torch.equal(expected[0], got[0])


def test_orientation_not_transposed():
    """A wide box in the top-right corner marks top-right cells only."""
    box = torch.tensor([[48., 0., 64., 8.]])
    mask = imitation_mask([box], (4, 8), 8, torch.tensor([[16., 8.]]))
    assert mask.shape == (1, 4, 8)
    rows, cols = torch.nonzero(mask[0], as_tuple=True)
    assert rows.tolist() == [0, 0]
    assert cols.tolist() == [6, 7]


def test_single_level_equals_non_joint():
    rng = random.Random(3)
    gt = [random_boxes(rng, 5, 64, 64)]
    single = imitation_mask(gt, (8, 8), 8, ANCHORS[0], psi=0.5)
    multi = imitation_masks(gt, [(8, 8), (4, 4)], [8, 16], ANCHORS,
                            psi=0.5, joint=False)
    assert torch.equal(single, multi[0])


def test_joint_assigns_box_to_best_level():
    """A small box matches the stride-8 anchors best: with joint=True it
    leaves no cell on the coarse level, with joint=False it does."""
    box = [torch.tensor([[20., 20., 30., 33.]])]
    sizes, strides = [(8, 8), (4, 4)], [8, 16]
    joint = imitation_masks(box, sizes, strides, ANCHORS, joint=True)
    per_level = imitation_masks(box, sizes, strides, ANCHORS, joint=False)
    assert joint[0].any() and not joint[1].any()
    assert per_level[1].any()


def test_empty_and_degenerate_inputs():
    anchors = ANCHORS[0]
    empty = imitation_mask([torch.zeros(0, 4), torch.zeros(0, 4)], (4, 6), 8,
                           anchors)
    assert empty.shape == (2, 4, 6) and not empty.any()
    degenerate = torch.tensor([[10., 10., 10., 30.], [5., 9., 20., 2.]])
    assert not imitation_mask([degenerate], (4, 6), 8, anchors).any()
    far = torch.tensor([[1000., 1000., 1040., 1040.]])
    assert not imitation_mask([far], (4, 6), 8, anchors).any()
    assert imitation_masks([], [(2, 2)], [8], [anchors])[0].shape == (0, 2, 2)


def test_box_partly_outside_counts():
    box = torch.tensor([[-10., -10., 12., 14.]])
    mask = imitation_mask([box], (4, 4), 8, ANCHORS[0])
    assert mask[0, 0, 0]


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_inputs(dtype):
    rng = random.Random(5)
    gt = [random_boxes(rng, 4, 64, 64, allow_bad=False)]
    got = imitation_mask([g.to(dtype) for g in gt], (8, 8), 8,
                         ANCHORS[0].to(dtype))
    # The boxes were rounded to dtype; compare with the rounded boxes.
    ref = imitation_mask([g.to(dtype).float() for g in gt], (8, 8), 8,
                         ANCHORS[0].to(dtype).float())
    assert torch.equal(ref, got)


def test_many_boxes_one_image():
    rng = random.Random(9)
    gt = [random_boxes(rng, 1000, 320, 320)]
    sizes = [(40, 40), (20, 20)]
    got = imitation_masks(gt, sizes, [8, 16], ANCHORS)
    assert got[0].any() and got[0].shape == (1, 40, 40)


@pytest.mark.parametrize('bad', [0.0, -0.1, 1.5, float('nan')])
def test_psi_validated(bad):
    with pytest.raises(ValueError, match='psi'):
        imitation_mask([torch.zeros(0, 4)], (2, 2), 8, ANCHORS[0], psi=bad)


def test_level_count_validated():
    with pytest.raises(ValueError, match='one entry per level'):
        imitation_masks([torch.zeros(0, 4)], [(2, 2), (1, 1)], [8],
                        ANCHORS)


def test_gt_box_mask_is_cells_inside_boxes():
    box = torch.tensor([[8., 0., 24., 9.]])
    mask = gt_box_masks([box], [(2, 4)], [8])[0]
    expected = torch.zeros(1, 2, 4, dtype=torch.bool)
    expected[0, 0, 1] = expected[0, 0, 2] = True  # centres (12,4), (20,4)
    assert torch.equal(mask, expected)
    assert math.isclose(float(mask.float().mean()), 2 / 8)


def test_gt_box_mask_honours_the_centre_offset():
    """Centres at (j + 0) * s (e.g. mmdet's YOLOv3/RetinaNet priors): the
    cells at x = 8 and 16 lie inside (7, 17), those at 0 and 24 do not;
    with the default 0.5 the centres 4, 12, 20, 28 give only 12."""
    box = torch.tensor([[7., 1., 17., 9.]])
    at_zero = gt_box_masks([box], [(2, 4)], [8], center_offset=0.0)[0]
    expected = torch.zeros(1, 2, 4, dtype=torch.bool)
    expected[0, 1, 1] = expected[0, 1, 2] = True  # centres (8, 8), (16, 8)
    assert torch.equal(at_zero, expected)
    half = gt_box_masks([box], [(2, 4)], [8])[0]
    expected = torch.zeros(1, 2, 4, dtype=torch.bool)
    expected[0, 0, 1] = True  # centre (12, 4)
    assert torch.equal(half, expected)


def test_benchmark_reference_matches():
    """The naive per-box loop (cells in row-major order) used as the
    benchmark's reference gives the same masks (per-level maximum)."""
    from fgd_mmrazor.ops.reference_loop import loop_imitation_masks
    rng = random.Random(21)
    gt = [random_boxes(rng, n, 160, 96).float() for n in (0, 4, 9)]
    sizes, strides = [(12, 20), (6, 10)], [8, 16]
    anchors = [a.float() for a in ANCHORS]
    loop = loop_imitation_masks(gt, sizes, strides, anchors, psi=0.5)
    ours = imitation_masks(gt, sizes, strides, anchors, psi=0.5,
                           joint=False)
    for s, o in zip(loop, ours):
        assert torch.equal(s, o)
    assert any(o.any() for o in ours)


@pytest.mark.parametrize('seed', range(4))
def test_non_integer_anchors_match_the_dense_reference(seed):
    """Anchors with irrational sides (anchor templates: side * sqrt(ratio))
    and fractional strides, float32: the per-row runs equal a dense float32
    evaluation of every cell and anchor (the benchmark's reference)."""
    from fgd_mmrazor.ops.reference_loop import loop_imitation_masks
    rng = random.Random(100 + seed)
    side = [32.0, 64.0]
    anchors = [
        torch.tensor([[s * math.sqrt(r), s / math.sqrt(r)]
                      for r in (0.5, 1.0, 2.0, 3.3)]) for s in side
    ]
    sizes, strides = [(13, 21), (7, 11)], [7.5, 15]
    gt = [random_boxes(rng, n, 160, 96).float() for n in (0, 6, 25)]
    loop = loop_imitation_masks(gt, sizes, strides, anchors, psi=0.5)
    ours = imitation_masks(gt, sizes, strides, anchors, psi=0.5, joint=False)
    for s, o in zip(loop, ours):
        assert torch.equal(s, o)
    assert any(o.any() for o in ours)
