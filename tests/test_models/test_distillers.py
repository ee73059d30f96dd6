"""FGDDistiller on tiny models and a built YOLOv5 model."""
import pytest
import torch

from fgd_mmrazor import FGDDistiller
from mmrazor.registry import MODELS

from .conftest import (TWO_IMAGE_BOXES, three_level_algo, three_level_cfg,
                       train_batch)


def test_distiller_generates_levels():
    distiller = FGDDistiller(
        student_layers=['neck.out_layers.0', 'neck.out_layers.1'],
        student_channels=[8, 16],
        teacher_channels=[16, 32],
        level_names=['p3', 'p4'],
        loss=dict(type='ImitationMaskLoss', loss_weight=2.0))
    assert sorted(distiller.distill_losses) == [
        'loss_imitation_p3', 'loss_imitation_p4'
    ]
    conv = distiller.connectors['adapt_p4'].conv_module
    assert (conv.conv.in_channels, conv.conv.out_channels) == (16, 32)
    assert conv.conv.kernel_size == (3, 3)
    assert not conv.with_activation and not conv.with_norm
    mapping = distiller.loss_forward_mappings['loss_imitation_p4']
    assert mapping['mask'] == dict(
        from_student=True, recorder='imitation_mask', data_idx=1)
    assert mapping['preds_S']['connector'] == 'adapt_p4'
    rec = distiller.student_recorders.recorders['imitation_mask']
    assert rec.levels == [0, 1]
    assert distiller.distill_losses['loss_imitation_p3'].loss_weight == 2.0


def test_distiller_without_mask_or_connector():
    distiller = FGDDistiller(
        student_layers=['a', 'b'],
        student_channels=[8, 8],
        teacher_channels=[8, 8],
        loss=dict(type='ChannelWiseDivergence', tau=1, loss_weight=3),
        loss_prefix='loss_cwd',
        connector=None,
        mask=None)
    assert 'imitation_mask' not in distiller.student_recorders.recorders
    assert len(distiller.connectors) == 0
    assert set(distiller.loss_forward_mappings['loss_cwd_level0']) == {
        'preds_S', 'preds_T'
    }


def test_distiller_rejects_mismatched_lists():
    with pytest.raises(ValueError, match='one entry per imitated level'):
        FGDDistiller(
            student_layers=['a', 'b'],
            student_channels=[8],
            teacher_channels=[8, 8])
    with pytest.raises(ValueError, match='anchor sets'):
        FGDDistiller(
            student_layers=['a'],
            student_channels=[8],
            teacher_channels=[8],
            mask=dict(type='ImitationMask', base_anchors=[[(1, 1)],
                                                          [(2, 2)]],
                      strides=[8, 16]))


class _Tiny(torch.nn.Module):

    def __init__(self, channels):
        super().__init__()
        self.a = torch.nn.Conv2d(3, channels, 1)

    def forward(self, x):
        return self.a(x)


def _grads_at_scale(scale, connector=True):
    torch.manual_seed(0)
    channels = 6 if connector else 4
    student, teacher = _Tiny(4), _Tiny(channels)
    kwargs = {} if connector else dict(connector=None)
    distiller = FGDDistiller(
        student_layers=['a'], student_channels=[4],
        teacher_channels=[channels],
        loss=dict(type='ImitationMaskLoss', loss_weight=1.0), mask=None,
        **kwargs)
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    distiller.student_grad_scale = scale
    x = torch.randn(2, 3, 5, 5)
    with distiller.student_recorders, distiller.teacher_recorders:
        student(x)
        with torch.no_grad():
            teacher(x)
        loss = distiller.compute_distill_losses()['loss_imitation_level0']
    if not loss.requires_grad:  # no adapter, scale 0: nothing to train
        return float(loss), student.a.weight.grad, None
    loss.backward()
    if not connector:
        return float(loss), student.a.weight.grad, None
    adapter = distiller.connectors['adapt_level0'].conv_module.conv
    return (float(loss), student.a.weight.grad, adapter.weight.grad)


def test_student_grad_scale_scales_only_the_student_gradient():
    loss1, student1, adapter1 = _grads_at_scale(1.0)
    loss_half, student_half, adapter_half = _grads_at_scale(0.5)
    loss0, student0, adapter0 = _grads_at_scale(0.0)
    assert loss1 == loss_half == loss0 > 0
    assert student1.abs().sum() > 0
    torch.testing.assert_close(student_half, 0.5 * student1)
    assert student0 is None  # detached: no gradient reaches the student
    torch.testing.assert_close(adapter_half, adapter1)
    torch.testing.assert_close(adapter0, adapter1)


def test_student_grad_scale_without_adapter():
    """connector=None: the scale applies to the student feature itself."""
    loss1, student1, _ = _grads_at_scale(1.0, connector=False)
    loss_half, student_half, _ = _grads_at_scale(0.5, connector=False)
    loss0, student0, _ = _grads_at_scale(0.0, connector=False)
    assert loss1 == loss_half == loss0 > 0
    assert student1.abs().sum() > 0
    torch.testing.assert_close(student_half, 0.5 * student1)
    assert student0 is None


def test_imitation_scale_multiplies_the_losses():
    torch.manual_seed(0)
    distiller = FGDDistiller(student_layers=['a'], student_channels=[4],
                             teacher_channels=[4], mask=None, connector=None,
                             loss=dict(type='ChannelWiseDivergence', tau=1.0,
                                       loss_weight=1.0))
    s, t = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    distiller.get_record = \
        lambda recorder, from_student, **kw: s if from_student else t
    full = distiller.compute_distill_losses()['loss_imitation_level0']
    distiller.imitation_scale = 0.0
    off = distiller.compute_distill_losses()['loss_imitation_level0']
    assert float(full) > 0 and float(off) == 0.0


def test_accessors_give_a_levels_records_adapter_and_mask(teacher_ckpt):
    path, _ = teacher_ckpt
    algo = MODELS.build(three_level_cfg(path))
    algo.train()
    boxes = torch.tensor([[0., 0., 10., 8., 40., 30.],
                          [1., 0., 50., 20., 90., 60.]])
    data = train_batch(algo, boxes)
    algo(**data, mode='loss')
    distiller = algo.distiller
    assert distiller.level_names == ['level0', 'level1', 'level2']
    assert distiller.mask_recorder is \
        distiller.student_recorders.recorders['imitation_mask']
    cells = 0
    for index, (level, channels, stride) in enumerate(
            zip(distiller.level_names, (64, 128, 256), (8, 16, 32))):
        student, teacher, mask = distiller.records(level)
        shape = (2, channels, 64 // stride, 96 // stride)
        assert student.shape == teacher.shape == shape
        assert mask.shape == (2, *shape[2:]) and mask.dtype == torch.bool
        cells += int(mask.sum())
        assert torch.equal(mask, distiller.mask(level))
        assert torch.equal(
            mask, distiller.get_record('imitation_mask', True,
                                       data_idx=index))
        assert distiller.adapter(level) is \
            distiller.connectors[f'adapt_{level}']
        assert distiller.loss_name(level) == f'loss_imitation_{level}'
        assert distiller.features(level)[1] is teacher
    assert cells > 0
    with pytest.raises(KeyError, match="no level 'p3'"):
        distiller.records('p3')
    bare = FGDDistiller(student_layers=['a'], student_channels=[4],
                        teacher_channels=[4], mask=None, connector=None)
    assert bare.mask_recorder is None and bare.adapter('level0') is None
    with pytest.raises(ValueError, match='has no mask'):
        bare.mask('level0')


@pytest.mark.parametrize('sparse', [True, False])
def test_imitation_path_is_fp32_under_autocast(teacher_ckpt, sparse):
    """Given the same recorded (bf16) features, the imitation losses and
    the adapters' gradients computed inside bf16 autocast equal those
    computed outside it, to fp32 rounding: adapters, difference and loss
    run in fp32 whatever the autocast state."""
    algo = three_level_algo(teacher_ckpt, sparse_adapters=sparse)
    data = train_batch(algo, TWO_IMAGE_BOXES)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        algo(**data, mode='loss')
    distiller = algo.distiller
    raw = distiller.student_recorders.recorders['feat_level0'].data_buffer
    assert raw[0].dtype == torch.bfloat16  # recorded in reduced precision
    assert distiller.features('level0')[0].dtype == torch.float32

    def losses_and_grads(autocast):
        distiller.connectors.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            losses = distiller.compute_distill_losses()
        sum(losses.values()).backward(retain_graph=True)
        return losses, [p.grad.clone()
                        for p in distiller.connectors.parameters()]

    inside, grads_inside = losses_and_grads(True)
    outside, grads_outside = losses_and_grads(False)
    assert set(inside) == {f'loss_imitation_level{i}' for i in range(3)}
    assert sum(float(v) for v in outside.values()) > 0
    for name in inside:
        assert inside[name].dtype == torch.float32
        torch.testing.assert_close(inside[name], outside[name], rtol=1e-5,
                                   atol=0)
    assert any(g.abs().sum() > 0 for g in grads_outside)
    for g_in, g_out in zip(grads_inside, grads_outside):
        torch.testing.assert_close(g_in, g_out, rtol=1e-5, atol=1e-12)
