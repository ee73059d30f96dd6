"""Property-based tests (hypothesis) of imitation_masks."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fgd_mmrazor import imitation_masks

ANCHORS = [torch.tensor([[10., 13.], [16., 30.], [33., 23.]]),
           torch.tensor([[30., 61.], [62., 45.], [59., 119.]])]
SIZES, STRIDES = [(8, 12), (4, 6)], [8, 16]  # a 64 x 96 input

coord = st.floats(-40, 140, allow_nan=False, width=32)
box = st.tuples(coord, coord, st.floats(0, 90, width=32),
                st.floats(0, 90, width=32)).map(
                    lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]])
image_boxes = st.lists(box, max_size=8).map(
    lambda bs: torch.tensor(bs, dtype=torch.float32).reshape(-1, 4))
batch = st.lists(image_boxes, min_size=1, max_size=3)


def masks(gt, psi=0.5, joint=True):
    return imitation_masks(gt, SIZES, STRIDES, ANCHORS, psi=psi,
                           joint=joint)


@settings(max_examples=60, deadline=None)
@given(batch, st.floats(0.05, 1.0), st.floats(0.05, 1.0), st.booleans())
def test_monotonic_in_psi(gt, psi_a, psi_b, joint):
    lo, hi = sorted((psi_a, psi_b))
    for m_lo, m_hi in zip(masks(gt, lo, joint), masks(gt, hi, joint)):
        assert not (m_hi & ~m_lo).any()  # higher psi: subset


@settings(max_examples=60, deadline=None)
@given(batch, st.randoms(use_true_random=False))
def test_invariant_to_box_order(gt, rnd):
    shuffled = [b[torch.tensor(rnd.sample(range(len(b)), len(b)),
                               dtype=torch.long)] if len(b) else b
                for b in gt]
    for a, b in zip(masks(gt), masks(shuffled)):
        assert torch.equal(a, b)


@settings(max_examples=40, deadline=None)
@given(batch, st.floats(1000, 5000), st.floats(1000, 5000))
def test_far_box_adds_nothing(gt, x, y):
    far = torch.tensor([[x, y, x + 50, y + 50]])
    with_far = [torch.cat([gt[0], far])] + gt[1:]
    for a, b in zip(masks(gt), masks(with_far)):
        assert torch.equal(a, b)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.booleans())
def test_empty_input_gives_empty_masks(num_imgs, joint):
    out = masks([torch.zeros(0, 4)] * num_imgs, joint=joint)
    assert [m.shape for m in out] == [(num_imgs, 8, 12), (num_imgs, 4, 6)]
    assert not any(m.any() for m in out)
