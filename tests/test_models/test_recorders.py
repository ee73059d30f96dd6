"""ImitationMaskRecorder and the ground truth it reads (built YOLOv5)."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from fgd_mmrazor import ImitationMaskRecorder, imitation_masks
from fgd_mmrazor.models.utils import (anchors_from_model,
                                      gt_bboxes_from_data_samples)


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


def test_masks_are_primed_before_the_forwards(teacher_ckpt):
    """FGDDistill computes the masks and their cells once, before the
    forwards; they equal the masks of the boxes the forward recorded. A
    forward the recorder was not primed for records and computes its
    own."""
    from .conftest import TWO_IMAGE_BOXES, three_level_algo, train_batch
    algo = three_level_algo(teacher_ckpt)
    rec = algo.distiller.mask_recorder
    compute, calls = rec.compute_masks, []

    def counted(*args):
        calls.append(args)
        return compute(*args)

    rec.compute_masks = counted
    algo(**train_batch(algo, TWO_IMAGE_BOXES), mode='loss')
    assert len(calls) == 1  # in prime, not again when the losses read
    masks = rec.get_record_data(0)
    fresh = compute(*rec.data_buffer[0])  # from the recorded boxes
    assert sum(int(m.sum()) for m in masks) > 0
    for mask, again, cells in zip(masks, fresh, rec.get_record_cells(0)):
        assert torch.equal(mask, again)
        for got, want in zip(cells, torch.nonzero(mask, as_tuple=True)):
            assert torch.equal(got, want)
    # the dense path reads no cells: none are primed
    dense = three_level_algo(teacher_ckpt, sparse_adapters=False)
    assert algo.distiller.reads_mask_cells
    assert not dense.distiller.reads_mask_cells
    dense(**train_batch(dense, TWO_IMAGE_BOXES), mode='loss')
    assert dense.distiller.mask_recorder._cells == {}
    # not primed for this call: the pre-hook records the boxes, and the
    # masks are computed when read
    data = train_batch(algo, TWO_IMAGE_BOXES[:1])
    with algo.distiller.student_recorders:  # called as FGDDistill calls
        algo.student(data['inputs'], data['data_samples'], mode='loss')
        assert len(calls) == 1
        assert sum(int(m.sum()) for m in rec.get_record_data(0)) > 0
        assert len(calls) == 2
