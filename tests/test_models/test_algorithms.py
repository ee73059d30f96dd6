"""FGDDistill: teacher loading, freezing and eval mode; safe checkpoints."""
import os
import pickle
import re

import pytest
import torch
from mmengine.hub import get_model

from fgd_mmrazor.utils import UnsafeCheckpointError, safe_load
from mmrazor.registry import MODELS

from .conftest import YOLOV5_N, algorithm_cfg, three_level_cfg


def test_teacher_loaded_frozen_and_in_eval(teacher_ckpt):
    path, teacher = teacher_ckpt
    algo = MODELS.build(algorithm_cfg(teacher_ckpt=path))
    for k, v in teacher.state_dict().items():
        assert torch.equal(algo.teacher.state_dict()[k], v), k
    algo.train()
    assert algo.student.training
    assert not any(m.training for m in algo.teacher.modules())
    assert not any(p.requires_grad for p in algo.teacher.parameters())
    assert all(p.requires_grad for p in algo.distiller.parameters())


def test_teacher_ckpt_required():
    with pytest.raises(ValueError, match='teacher_ckpt is not set'):
        MODELS.build(algorithm_cfg())
    with pytest.raises(FileNotFoundError, match='does not exist'):
        MODELS.build(algorithm_cfg(teacher_ckpt='/nonexistent/t.pth'))


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = str(tmp_path / 'wrong.pth')
    torch.save({'state_dict': {'architecture.backbone.x': torch.zeros(1)}},
               path)
    with pytest.raises(RuntimeError, match='export the student'):
        MODELS.build(algorithm_cfg(teacher_ckpt=path))


def _teacher_state(teacher_ckpt):
    path, _ = teacher_ckpt
    return dict(safe_load(path)['state_dict'])


def test_meta_tensor_teacher_is_refused(teacher_ckpt, tmp_path):
    """A file of the right shapes and no data (meta tensors) would leave
    the teacher random."""
    state = {
        k: torch.empty_like(v, device='meta')
        for k, v in _teacher_state(teacher_ckpt).items()
    }
    path = str(tmp_path / 'meta.pth')
    torch.save({'state_dict': state}, path)
    assert os.path.getsize(path) < 100_000
    first = sorted(state)[0]
    with pytest.raises(RuntimeError,
                       match=f"'{re.escape(first)}' is a meta tensor"):
        MODELS.build(algorithm_cfg(teacher_ckpt=path))


def test_non_finite_teacher_is_refused(teacher_ckpt, tmp_path):
    state = _teacher_state(teacher_ckpt)
    key = sorted(k for k, v in state.items()
                 if k.startswith('neck.') and v.is_floating_point())[0]
    state[key] = state[key].clone()
    state[key].view(-1)[:3] = float('nan')
    state[key].view(-1)[3] = float('inf')
    path = str(tmp_path / 'nan.pth')
    torch.save({'state_dict': state}, path)
    with pytest.raises(RuntimeError,
                       match=f"'{re.escape(key)}' has 4 non-finite values"
                       r'.*\(3 NaN, 1 inf\)'):
        MODELS.build(algorithm_cfg(teacher_ckpt=path))


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null', ))


def test_code_running_pickle_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    with open(path, 'wb') as f:
        torch.save({'state_dict': {}, 'x': _Evil()}, f)
    with pytest.raises(UnsafeCheckpointError, match='Refusing'):
        safe_load(path)
    with pytest.raises(UnsafeCheckpointError):
        MODELS.build(algorithm_cfg(teacher_ckpt=path))
    # A plain pickle (not a torch zip file) of the same is refused too.
    raw = str(tmp_path / 'evil.pkl')
    with open(raw, 'wb') as f:
        pickle.dump({'x': _Evil()}, f)
    with pytest.raises(UnsafeCheckpointError):
        safe_load(raw)


def _batch():
    return dict(
        inputs=torch.zeros(1, 3, 64, 64),
        data_samples=dict(
            bboxes_labels=torch.tensor([[0., 0., 10., 10., 40., 40.]]),
            img_metas=[dict(batch_input_shape=(64, 64))]))


def test_train_step_guards(teacher_ckpt):
    """The checks of ``DistillGuardHook`` (the DDP test runs them in a
    2-process run)."""
    import types

    from mmengine.logging import MMLogger
    from mmengine.optim import OptimWrapper

    from fgd_mmrazor.engine import DistillGuardHook
    path, _ = teacher_ckpt
    hook = DistillGuardHook()
    algo = MODELS.build(algorithm_cfg(teacher_ckpt=path))
    algo.train()
    # An optimizer over the student only: the adapters would never train.
    student_only = OptimWrapper(
        torch.optim.SGD(algo.student.parameters(), lr=0.01))
    runner = types.SimpleNamespace(model=algo, optim_wrapper=student_only)
    with pytest.raises(RuntimeError, match='adapter'):
        hook.before_train(runner)
    # A teacher put back in train mode with gradients is corrected.
    algo = MODELS.build(algorithm_cfg(teacher_ckpt=path))
    algo.train()
    wrapper = OptimWrapper(torch.optim.SGD(
        [p for p in algo.parameters() if p.requires_grad], lr=0.01))
    runner = types.SimpleNamespace(model=algo, optim_wrapper=wrapper)
    hook.before_train(runner)
    assert algo.guarded
    algo.teacher.train()
    next(algo.teacher.parameters()).requires_grad_(True)
    MMLogger.get_instance('fgd_test')
    hook.before_train_iter(runner, 0)
    losses = algo.train_step(_batch(), wrapper)
    assert not algo.teacher.training
    assert not any(p.requires_grad for p in algo.teacher.parameters())
    assert all(torch.isfinite(v) for v in losses.values())


EDGE_BOXES = {
    # (batch_idx, label, x1, y1, x2, y2) in a 96 x 64 (w x h) input. Boxes
    # outside the image never reach a detector: the dataset drops boxes
    # without overlap and the pipeline clips the others (mmyolo's YOLOv5
    # head would index its grid with them). tests/test_engine/
    # test_edge_data.py trains on such annotations through the pipeline;
    # here is what can reach the model (boxes on the border, zero size).
    'border': [[0., 0., 0., 0., 30., 25.], [0., 0., 70., 40., 96., 64.]],
    'zero_size': [[0., 0., 30., 30., 30., 30.], [0., 0., 10., 20., 40., 20.]],
    'no_boxes': [],
    'mixed': [[0., 0., 0., 0., 30., 25.], [0., 0., 30., 30., 30., 30.],
              [0., 0., 40., 10., 70., 40.]],
}


@pytest.mark.parametrize('case', list(EDGE_BOXES))
def test_batch_of_one_with_edge_case_boxes_trains(case, teacher_ckpt):
    """Batch size 1, a rectangular input and boxes partly or fully outside
    the image, of zero size or none: several optimizer steps on all three
    imitated levels, with finite losses and weights."""
    from mmengine.optim import OptimWrapper
    path, _ = teacher_ckpt
    algo = MODELS.build(three_level_cfg(path))
    algo.train()
    wrapper = OptimWrapper(torch.optim.AdamW(
        [p for p in algo.parameters() if p.requires_grad], lr=0.01))
    boxes = torch.tensor(EDGE_BOXES[case]).reshape(-1, 6)
    torch.manual_seed(0)
    for _ in range(3):
        batch = dict(
            inputs=torch.rand(1, 3, 64, 96) * 255,
            data_samples=dict(
                bboxes_labels=boxes.clone(),
                img_metas=[dict(batch_input_shape=(64, 96))]))
        losses = algo.train_step(batch, wrapper)
        assert all(torch.isfinite(v) for v in losses.values()), losses
    assert all(torch.isfinite(p).all() for p in algo.parameters())
    if case in ('zero_size', 'no_boxes'):
        # nothing to imitate: exactly zero, not NaN
        assert all(float(losses[f'distill.loss_imitation_level{i}']) == 0
                   for i in range(3))
    else:
        assert sum(float(losses[f'distill.loss_imitation_level{i}'])
                   for i in range(3)) > 0


def test_imitated_layer_that_does_not_exist():
    cfg = algorithm_cfg(
        teacher_ckpt_required=False,
        distiller=dict(
            type='FGDDistiller',
            student_layers=['neck.out_layer.0'],
            student_channels=[64],
            teacher_channels=[64]))
    with pytest.raises(ValueError, match=r"'neck.out_layer.0' .*did you "
                       r"mean \['neck.out_layers.0'"):
        MODELS.build(cfg)
    cfg['distiller'].update(student_layers=['neck.out_layers.0'],
                            teacher_layers=['neck.nope'])
    with pytest.raises(ValueError, match='module of the teacher'):
        MODELS.build(cfg)


def test_wrong_channels_or_strides_fail_at_build_time():
    base = dict(type='FGDDistiller', student_layers=['neck.out_layers.0'],
                student_channels=[64], teacher_channels=[64])
    with pytest.raises(ValueError, match='student_channels says 32'):
        MODELS.build(algorithm_cfg(
            teacher_ckpt_required=False,
            distiller=dict(base, student_channels=[32])))
    with pytest.raises(ValueError, match='teacher_channels says 128'):
        MODELS.build(algorithm_cfg(
            teacher_ckpt_required=False,
            distiller=dict(base, teacher_channels=[128])))
    with pytest.raises(ValueError, match='same stride'):
        MODELS.build(algorithm_cfg(
            teacher_ckpt_required=False,
            distiller=dict(base, teacher_layers=['neck.out_layers.1'],
                           teacher_channels=[128])))


def test_sparse_adapters_match_the_dense_path(teacher_ckpt):
    """The default (adapters evaluated at the masked cells only) gives the
    dense adapter's losses and gradients, also with a warm-up scale."""
    path, _ = teacher_ckpt
    torch.manual_seed(0)
    algo = MODELS.build(three_level_cfg(path))
    algo.train()
    boxes = torch.tensor([[0., 0., 10., 8., 40., 30.],
                          [0., 0., 50., 20., 90., 60.],
                          [1., 0., 0., 0., 96., 64.]])
    inputs = torch.rand(2, 3, 64, 96) * 255
    params = [p for p in algo.parameters() if p.requires_grad]

    def run(sparse, scale):
        algo.distiller.sparse_adapters = sparse
        algo.distiller.student_grad_scale = scale
        samples = dict(bboxes_labels=boxes.clone(),
                       img_metas=[dict(batch_input_shape=(64, 96))] * 2)
        data = algo.data_preprocessor(dict(inputs=inputs,
                                           data_samples=samples), True)
        losses = algo(**data, mode='loss')
        imitation = {k: v for k, v in losses.items() if 'imitation' in k}
        total = sum(imitation.values())
        grads = torch.autograd.grad(total, params, allow_unused=True)
        return imitation, grads

    for scale in (1.0, 0.5):
        sparse, g_sparse = run(True, scale)
        dense, g_dense = run(False, scale)
        assert sum(float(v) for v in sparse.values()) > 0
        for k in dense:
            torch.testing.assert_close(sparse[k], dense[k], rtol=1e-5,
                                       atol=1e-7)
        for a, d in zip(g_sparse, g_dense):
            if d is None:
                assert a is None or not a.any()
                continue
            # float32 summation order differs (gather + matmul vs conv)
            torch.testing.assert_close(
                a, d, rtol=1e-3, atol=1e-4 * float(d.abs().max()) + 1e-8)


@pytest.mark.parametrize('sparse', [True, False])
def test_num_pos_all_levels_shares_one_normaliser(teacher_ckpt, sparse):
    """'all_levels' divides every level's squared sum by the mask cells of
    all levels; 'per_level' by the level's own: loss_l(all) * N_total ==
    loss_l(per_level) * N_l for every level."""
    path, _ = teacher_ckpt
    torch.manual_seed(0)
    algo = MODELS.build(three_level_cfg(path))
    algo.train()
    algo.distiller.sparse_adapters = sparse
    boxes = torch.tensor([[0., 0., 10., 8., 40., 30.],
                          [0., 0., 2., 2., 94., 62.],
                          [1., 0., 20., 10., 36., 40.]])
    inputs = torch.rand(2, 3, 64, 96) * 255
    assert algo.distiller.num_pos == 'all_levels'

    def losses(mode):
        algo.distiller.num_pos = mode
        samples = dict(bboxes_labels=boxes.clone(),
                       img_metas=[dict(batch_input_shape=(64, 96))] * 2)
        data = algo.data_preprocessor(dict(inputs=inputs,
                                           data_samples=samples), True)
        with torch.no_grad():
            out = algo(**data, mode='loss')
        masks = [
            algo.distiller.get_record('imitation_mask', True, data_idx=i)
            for i in range(3)
        ]
        return {k: float(v) for k, v in out.items() if 'imitation' in k}, \
            [int(m.sum()) for m in masks]

    per_level, cells = losses('per_level')
    shared, cells_again = losses('all_levels')
    assert cells == cells_again and min(cells) > 0
    total = sum(cells)
    for idx in range(3):
        key = f'distill.loss_imitation_level{idx}'
        assert shared[key] > 0
        assert shared[key] * total == pytest.approx(
            per_level[key] * cells[idx], rel=1e-5)
    with pytest.raises(ValueError, match='num_pos'):
        MODELS.build(algorithm_cfg(teacher_ckpt=path, distiller=dict(
            type='FGDDistiller', student_layers=['neck.out_layers.0'],
            student_channels=[64], teacher_channels=[64], num_pos='bad')))


def test_student_initialised_as_the_student_alone(teacher_ckpt):
    """Building the adapters and the teacher draws no random number: with
    the same seed, the distilled student's initial weights (after
    init_weights, as the runner does) equal the student trained alone's,
    so a distilled run and its baseline differ by the imitation only."""
    from mmengine.runner import set_random_seed
    path, _ = teacher_ckpt
    set_random_seed(3)
    alone = get_model(YOLOV5_N, pretrained=False)
    alone.init_weights()
    set_random_seed(3)
    algo = MODELS.build(three_level_cfg(path))
    algo.init_weights()
    student = algo.student.state_dict()
    for k, v in alone.state_dict().items():
        assert torch.equal(student[k], v), k
    adapters = [p for p in algo.distiller.parameters()]
    assert adapters and any(p.abs().sum() > 0 for p in adapters)


def test_checkpoints_leave_the_frozen_teacher_out(teacher_ckpt):
    from mmengine.model import ExponentialMovingAverage
    from mmengine.runner.checkpoint import get_state_dict, load_state_dict
    path, _ = teacher_ckpt
    algo = MODELS.build(algorithm_cfg(teacher_ckpt=path))
    for state in (algo.state_dict(), get_state_dict(algo)):
        assert any(k.startswith('architecture.') for k in state)
        assert any(k.startswith('distiller.connectors.') for k in state)
        assert not any(k.startswith('teacher.') for k in state)
    # EMA averages the student and the adapters; it shares the teacher.
    ema = ExponentialMovingAverage(algo, momentum=0.1, update_buffers=True)
    assert ema.module.teacher is algo.teacher
    assert ema.module.architecture is not algo.architecture
    assert not any('teacher.' in k for k in ema.state_dict())
    ema.update_parameters(algo)
    # A lean state dict loads strictly (torch's and mmengine's loaders);
    # the teacher keeps the weights of teacher_ckpt.
    teacher = {k: v.clone() for k, v in algo.teacher.state_dict().items()}
    other = MODELS.build(algorithm_cfg(teacher_ckpt=path))
    other.load_state_dict(algo.state_dict(), strict=True)
    load_state_dict(other, algo.state_dict(), strict=True)
    # An old checkpoint with the teacher in it: that teacher is ignored.
    fat = dict(algo.state_dict())
    fat.update({
        'teacher.' + k: v + 7 if v.is_floating_point() else v
        for k, v in algo.teacher.state_dict().items()
    })
    other.load_state_dict(fat, strict=True)
    for k, v in other.teacher.state_dict().items():
        assert torch.equal(v, teacher[k]), k


def test_export_reads_old_and_new_checkpoints(teacher_ckpt, tmp_path):
    from fgd_mmrazor.utils import export_student
    path, _ = teacher_ckpt
    algo = MODELS.build(algorithm_cfg(teacher_ckpt=path))
    lean = algo.state_dict()
    fat = dict(lean)
    fat.update({'teacher.' + k: v
                for k, v in algo.teacher.state_dict().items()})
    expected = algo.architecture.state_dict()
    for name, state in (('lean', lean), ('fat', fat)):
        src = str(tmp_path / f'{name}.pth')
        torch.save({'state_dict': state, 'meta': {'epoch': 1}}, src)
        student = export_student(src, str(tmp_path / f'{name}_student.pth'))
        assert set(student) == set(expected)
        for k, v in expected.items():
            assert torch.equal(student[k], v), k


def _empty_batch():
    return dict(
        inputs=torch.zeros(1, 3, 64, 64),
        data_samples=dict(
            bboxes_labels=torch.zeros(0, 6),
            img_metas=[dict(batch_input_shape=(64, 64))]))


def _loss(algo, batch):
    return algo.loss(batch['inputs'], batch['data_samples'])


def _warnings(monkeypatch):
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('fgd_test_warnings')
    said = []
    monkeypatch.setattr(logger, 'warning', said.append)
    return said


def test_empty_masks_warn_once(teacher_ckpt, monkeypatch):
    """No ground-truth box for the first N iterations (e.g. category ids
    that are not the dataset's): one warning that says so."""
    path, _ = teacher_ckpt
    said = _warnings(monkeypatch)
    algo = MODELS.build(
        algorithm_cfg(teacher_ckpt=path, warn_empty_masks_after=3))
    algo.train()
    for _ in range(5):
        _loss(algo, _empty_batch())
    empty = [s for s in said if 'no ground-truth box reached' in s]
    assert len(empty) == 1 and 'first 3 training iterations' in empty[0]
    assert 'metainfo.classes' in empty[0]
    # Boxes in one of the first N batches: no warning.
    said.clear()
    algo = MODELS.build(
        algorithm_cfg(teacher_ckpt=path, warn_empty_masks_after=3))
    algo.train()
    _loss(algo, _batch())
    for _ in range(4):
        _loss(algo, _empty_batch())
    assert not [s for s in said if 'no ground-truth box reached' in s]


def test_empty_masks_for_a_whole_epoch_warn(teacher_ckpt, monkeypatch):
    from mmengine.logging import MessageHub
    path, _ = teacher_ckpt
    said = _warnings(monkeypatch)
    algo = MODELS.build(
        algorithm_cfg(teacher_ckpt=path, warn_empty_masks_after=100))
    algo.train()
    hub = MessageHub.get_current_instance()
    for epoch, batch in ((0, _batch), (1, _empty_batch), (2, _batch)):
        hub.update_info('epoch', epoch)
        _loss(algo, batch())
        _loss(algo, batch())
    empty = [s for s in said if 'no ground-truth box reached' in s]
    assert len(empty) == 1 and 'every iteration of epoch 2' in empty[0]


@pytest.mark.parametrize('side', ['teacher', 'student'])
def test_non_finite_imitation_loss_says_whose_feature(teacher_ckpt, side):
    path, _ = teacher_ckpt
    algo = MODELS.build(algorithm_cfg(teacher_ckpt=path))
    algo.train()
    _loss(algo, _batch())
    model = algo.teacher if side == 'teacher' else algo.student
    with torch.no_grad():
        for p in model.neck.parameters():
            p.fill_(float('nan'))
    losses = _loss(algo, _batch())  # read at the next step
    level = algo.distiller.level_names[0]
    assert not torch.isfinite(
        losses[f'distill.{algo.distiller.loss_name(level)}'])
    with pytest.raises(FloatingPointError,
                       match=f"level '{level}'.*the {side}'s feature"):
        _loss(algo, _batch())


def test_finite_check_in_a_runner_reads_no_device_value(teacher_ckpt):
    """In a runner the check reads the loss values the runner logged for
    the previous step; the device flags are read only when one is not
    finite."""
    from mmengine.logging import MessageHub
    path, _ = teacher_ckpt
    algo = MODELS.build(algorithm_cfg(teacher_ckpt=path))
    algo.train()
    hub = MessageHub.get_instance('fgd_test_finite')
    hub.update_info('iter', 0)
    losses = _loss(algo, _batch())

    class _Unread:

        def tolist(self):
            raise AssertionError('the device flags were read')

    algo._pending_finite = (_Unread(), 0)
    for key, value in losses.items():  # what RuntimeInfoHook logs
        hub.update_scalar(f'train/{key}', float(value))
    hub.update_info('iter', 1)
    _loss(algo, _batch())
    # A logged NaN makes it read the flags (finite here: no error).
    _loss(algo, _batch())
    hub.update_scalar(
        f'train/distill.{algo.distiller.loss_name("level0")}', float('nan'))
    hub.update_info('iter', 2)
    _loss(algo, _batch())
