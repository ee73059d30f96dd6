"""ImitationMaskLoss: hand-computed values, empty masks, gradient flow."""
import math

import pytest
import torch
from torch import nn

from fgd_mmrazor import ImitationMaskLoss


def test_hand_computed_value():
    # B=1, C=2, H=1, W=2. Cell (0,0) in the mask, cell (0,1) not.
    s = torch.tensor([[[[1., 5.]], [[2., 7.]]]])
    t = torch.tensor([[[[0., 0.]], [[4., 0.]]]])
    mask = torch.tensor([[[True, False]]])
    # masked cell: (1-0)^2 + (2-4)^2 = 5; N_p = 1 -> 5 / 2 = 2.5
    loss = ImitationMaskLoss(loss_weight=1.0)(s, t, mask)
    assert loss.item() == pytest.approx(2.5)
    assert ImitationMaskLoss(loss_weight=0.01)(s, t, mask).item() == \
        pytest.approx(0.025)


def test_normalised_by_cells_not_channels():
    # Two images, 3 channels, 2x2 map, constant difference 1 everywhere.
    s = torch.ones(2, 3, 2, 2)
    t = torch.zeros(2, 3, 2, 2)
    mask = torch.zeros(2, 2, 2, dtype=torch.bool)
    mask[0, 0, 0] = mask[1, 1, 1] = mask[1, 0, 1] = True  # N_p = 3
    # sum = 3 cells * 3 channels * 1 = 9, / (2 * 3) = 1.5
    assert ImitationMaskLoss(1.0)(s, t, mask).item() == pytest.approx(1.5)
    # No mask: every cell, N_p = 8: 24 / 16
    assert ImitationMaskLoss(1.0)(s, t).item() == pytest.approx(1.5)
    # float mask 0/1 is the same as bool
    assert ImitationMaskLoss(1.0)(s, t, mask.float()).item() == \
        pytest.approx(1.5)


def test_given_num_pos_replaces_the_mask_count():
    s = torch.ones(1, 2, 2, 2)
    t = torch.zeros(1, 2, 2, 2)
    mask = torch.zeros(1, 2, 2, dtype=torch.bool)
    mask[0, 0, 0] = True  # 1 cell, 2 channels: sum 2
    loss = ImitationMaskLoss(1.0)
    assert loss(s, t, mask).item() == pytest.approx(1.0)  # 2 / (2 * 1)
    assert loss(s, t, mask, num_pos=4).item() == pytest.approx(0.25)
    assert loss(s, t, mask, num_pos=torch.tensor(4)).item() == \
        pytest.approx(0.25)
    assert loss.forward_cells(s[0, :, 0, :1].T, t[0, :, 0, :1].T,
                              4).item() == pytest.approx(0.25)


def test_empty_mask_is_finite_zero_with_gradient():
    adapter = nn.Conv2d(2, 3, 3, padding=1)
    s = adapter(torch.randn(2, 2, 4, 4))
    t = torch.randn(2, 3, 4, 4)
    loss = ImitationMaskLoss(0.01)(s, t, torch.zeros(2, 4, 4,
                                                     dtype=torch.bool))
    assert math.isfinite(loss.item()) and loss.item() == 0.0
    loss.backward()
    # Connected to the graph: zero (not missing) gradients (DDP-safe).
    assert adapter.weight.grad is not None
    assert torch.count_nonzero(adapter.weight.grad) == 0


def test_gradient_reaches_student_and_adapter_not_teacher():
    student = nn.Conv2d(3, 4, 1)
    adapter = nn.Conv2d(4, 6, 3, padding=1)
    teacher = nn.Conv2d(3, 6, 1)
    x = torch.randn(2, 3, 5, 5)
    t = teacher(x)  # teacher output with a graph: the loss must detach it
    mask = torch.rand(2, 5, 5) > 0.5
    loss = ImitationMaskLoss(1.0)(adapter(student(x)), t, mask)
    loss.backward()
    assert student.weight.grad is not None and student.weight.grad.abs() \
        .sum() > 0
    assert adapter.weight.grad is not None and adapter.weight.grad.abs() \
        .sum() > 0
    assert teacher.weight.grad is None


def test_fp16_features_are_summed_in_fp32():
    s = torch.full((1, 256, 4, 4), 300., dtype=torch.float16)
    t = torch.zeros(1, 256, 4, 4, dtype=torch.float16)
    loss = ImitationMaskLoss(1.0)(s, t)
    # 256 * 300^2 / 2 = 11.52e6 overflows fp16 (max 65504).
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(256 * 300.**2 / 2)


def test_shape_errors_are_clear():
    loss = ImitationMaskLoss()
    with pytest.raises(ValueError, match='out_channel'):
        loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match='mask shape'):
        loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4),
             torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match='loss_weight'):
        ImitationMaskLoss(loss_weight=-1)


def test_explained_variance():
    from fgd_mmrazor.utils import explained_variance
    torch.manual_seed(0)
    teacher = torch.randn(2, 4, 5, 5)
    mask = torch.rand(2, 5, 5) > 0.5
    assert explained_variance(teacher, teacher, mask) == pytest.approx(1.0)
    # the teacher's mean feature over the masked cells explains nothing
    mean = teacher.permute(0, 2, 3, 1)[mask].mean(0)
    flat = mean[None, :, None, None].expand_as(teacher)
    assert explained_variance(flat, teacher, mask) == pytest.approx(0.0,
                                                                    abs=1e-6)
    # half the residual of the mean: 1 - 0.25
    half = (teacher + flat) / 2
    assert explained_variance(half, teacher, mask) == pytest.approx(0.75)
    # cells outside the mask do not count
    off = teacher.clone()
    off.permute(0, 2, 3, 1)[~mask] += 100
    assert explained_variance(off, teacher, mask) == pytest.approx(1.0)
    assert math.isnan(explained_variance(teacher, teacher,
                                         torch.zeros(2, 5, 5, dtype=bool)))


def test_linear_probe_explained_variance():
    """Held-out fit of a 1x1 map: near 1 for a linear teacher, near the
    noise share for a noisy one, about 0 (or below) for an unrelated one;
    unmasked cells are ignored."""
    from fgd_mmrazor.utils import linear_probe_explained_variance as probe
    torch.manual_seed(0)
    mix = torch.randn(6, 3)

    def pair(noise, related=True):
        s = torch.randn(4, 6, 8, 8)
        t = torch.einsum('bchw,cd->bdhw', s, mix) + 2.0  # with a bias
        if not related:
            t = torch.randn_like(t)
        return s, t + noise * torch.randn_like(t)

    mask = torch.rand(4, 8, 8) > 0.3
    s_fit, t_fit = pair(0.0)
    s_ev, t_ev = pair(0.0)
    assert probe([s_fit], [t_fit], [mask], [s_ev], [t_ev], [mask],
                 ridge=1e-8) == pytest.approx(1.0, abs=1e-6)
    # noise of the signal's size: about half the variance explained
    s_fit, t_fit = pair(1.0)
    s_ev, t_ev = pair(1.0)
    signal = float(torch.einsum('bchw,cd->bdhw', s_ev, mix).var())
    expected = signal / (signal + 1.0)
    assert probe([s_fit], [t_fit], [mask], [s_ev], [t_ev],
                 [mask]) == pytest.approx(expected, abs=0.08)
    s_fit, t_fit = pair(0.0, related=False)
    s_ev, t_ev = pair(0.0, related=False)
    assert probe([s_fit], [t_fit], [mask], [s_ev], [t_ev], [mask]) < 0.05
    # garbage outside the masks changes nothing
    s_fit, t_fit = pair(0.0)
    s_ev, t_ev = pair(0.0)
    base = probe([s_fit], [t_fit], [mask], [s_ev], [t_ev], [mask])
    t_fit.permute(0, 2, 3, 1)[~mask] = 1e3
    t_ev.permute(0, 2, 3, 1)[~mask] = -1e3
    assert probe([s_fit], [t_fit], [mask], [s_ev], [t_ev],
                 [mask]) == pytest.approx(base)
    assert math.isnan(
        probe([s_fit], [t_fit], [torch.zeros_like(mask)], [s_ev], [t_ev],
              [mask]))
