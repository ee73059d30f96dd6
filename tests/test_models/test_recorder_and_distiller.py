"""ImitationMaskRecorder and FGDDistiller on a built YOLOv5 model."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.hub import get_model
from mmengine.structures import InstanceData

from fgd_mmrazor import FGDDistiller, ImitationMaskRecorder, imitation_masks
from fgd_mmrazor.models.utils import (anchors_from_model,
                                      gt_bboxes_from_data_samples)

YOLOV5_N = 'mmyolo::yolov5/yolov5_n-v61_syncbn_fast_8xb16-300e_coco.py'


@pytest.fixture(scope='module')
def yolov5():
    return get_model(YOLOV5_N, pretrained=False)


def test_anchors_read_from_prior_generator(yolov5):
    anchors, strides, offset = anchors_from_model(yolov5)
    assert offset == 0.5
    generator = yolov5.bbox_head.prior_generator
    assert strides == [(8., 8.), (16., 16.), (32., 32.)]
    for level, base in enumerate(generator.base_anchors):
        # the generator's own (A, 4) anchors centred at the origin
        assert torch.allclose(anchors[level], base[:, 2:] - base[:, :2])
    assert anchors[0].tolist() == [[10., 13.], [16., 30.], [33., 23.]]


def test_gt_boxes_from_both_layouts():
    packed = dict(bboxes_labels=torch.tensor(
        [[1., 0., 1., 2., 3., 4.], [0., 0., 5., 6., 7., 8.],
         [1., 0., 9., 9., 10., 10.]]))
    boxes = gt_bboxes_from_data_samples(packed, 3)
    assert [b.tolist() for b in boxes] == [
        [[5., 6., 7., 8.]], [[1., 2., 3., 4.], [9., 9., 10., 10.]], []
    ]
    samples = []
    for b in boxes:
        s = DetDataSample()
        s.gt_instances = InstanceData(bboxes=b)
        samples.append(s)
    again = gt_bboxes_from_data_samples(samples, 3)
    assert all(torch.equal(a, b) for a, b in zip(again, boxes))
    with pytest.raises(TypeError, match='data_samples'):
        gt_bboxes_from_data_samples(torch.zeros(3), 3)


def test_recorder_records_boxes_before_the_head_edits_them(yolov5):
    rec = ImitationMaskRecorder()
    rec.initialize(yolov5)
    inputs = torch.zeros(2, 3, 64, 96)
    labels = torch.tensor([[0., 0., 10., 10., 40., 30.],
                           [1., 0., 50., 20., 90., 60.]])
    data_samples = dict(
        bboxes_labels=labels.clone(),
        img_metas=[dict(batch_input_shape=(64, 96))] * 2)
    yolov5.train()
    with rec:
        yolov5(inputs, data_samples, mode='loss')
        masks = rec.get_record_data(data_idx=None)
    # The head normalised the boxes in place...
    assert not torch.equal(data_samples['bboxes_labels'], labels)
    # ...but the masks are those of the original pixel boxes.
    expected = imitation_masks(
        [labels[:1, 2:], labels[1:, 2:]], [(8, 12), (4, 6), (2, 3)],
        [8, 16, 32], anchors_from_model(yolov5)[0])
    assert len(masks) == 3
    for got, want in zip(masks, expected):
        assert torch.equal(got, want)
    assert masks[0].any()
    assert rec.get_record_data(data_idx=0) is masks[0]  # computed once


def test_recorder_validates_arguments():
    with pytest.raises(ValueError, match='psi'):
        ImitationMaskRecorder(psi=0)
    with pytest.raises(ValueError, match='mode'):
        ImitationMaskRecorder(mode='box')
    with pytest.raises(ValueError, match='one of each per level'):
        ImitationMaskRecorder(base_anchors=[[(1, 1)]], strides=[8, 16])
    rec = ImitationMaskRecorder(source='neck.nothing')
    with pytest.raises(ValueError, match='not a module'):
        rec.initialize(torch.nn.Sequential())


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


def test_adapter_warmup_schedule_and_hook():
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from fgd_mmrazor.engine import AdapterWarmupHook, student_grad_scale_at
    assert [student_grad_scale_at(i, 3, 4) for i in range(9)] == [
        0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1
    ]
    assert student_grad_scale_at(0, 0, 0) == 1.0
    assert student_grad_scale_at(2, 2, 0) == 1.0
    # fade-out over the last 4 of 12 iterations, reaching 0 at the last
    assert [student_grad_scale_at(i, 2, 2, 4, 12) for i in range(12)] == [
        0, 0, 0.5, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25, 0
    ]
    with pytest.raises(ValueError):
        AdapterWarmupHook(adapter_only_iters=-1)
    with pytest.raises(ValueError):
        AdapterWarmupHook(fade_out_iters=-1)
    distiller = FGDDistiller(student_layers=['a'], student_channels=[4],
                             teacher_channels=[6], mask=None)
    hub = MessageHub.get_instance('adapter_warmup_test')
    runner = SimpleNamespace(iter=4, max_iters=20, message_hub=hub,
                             model=SimpleNamespace(distiller=distiller))
    AdapterWarmupHook(adapter_only_iters=3, ramp_iters=4).before_train_iter(
        runner, 0)
    assert distiller.student_grad_scale == 0.5
    runner.iter = 17
    AdapterWarmupHook(3, 4, fade_out_iters=4).before_train_iter(runner, 0)
    assert distiller.student_grad_scale == 0.5  # (20 - 1 - 17) / 4
    runner.iter = 4
    assert hub.get_scalar('train/imitation_grad_scale').current() == 0.5
    with pytest.raises(TypeError, match='FGDDistiller'):
        AdapterWarmupHook().before_train_iter(
            SimpleNamespace(iter=0, max_iters=1, message_hub=hub,
                            model=SimpleNamespace()), 0)


def test_adapter_warmup_delay_switches_imitation_off():
    """``delay_iters``: no imitation loss at all before it, the plain loss
    after (the authors' schedule)."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from fgd_mmrazor.engine import AdapterWarmupHook
    distiller = FGDDistiller(student_layers=['a'], student_channels=[4],
                             teacher_channels=[6], mask=None)
    hub = MessageHub.get_instance('adapter_delay_test')
    runner = SimpleNamespace(iter=0, max_iters=20, message_hub=hub,
                             model=SimpleNamespace(distiller=distiller))
    hook = AdapterWarmupHook(delay_iters=3)
    seen = []
    for it in range(5):
        runner.iter = it
        hook.before_train_iter(runner, it)
        seen.append((distiller.imitation_scale, distiller.student_grad_scale))
    assert seen == [(0.0, 1.0)] * 3 + [(1.0, 1.0)] * 2
    with pytest.raises(ValueError, match='delay_iters'):
        AdapterWarmupHook(delay_iters=-1)


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
