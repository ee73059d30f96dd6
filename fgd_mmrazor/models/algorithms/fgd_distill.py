"""Teacher-frozen, neck-only distillation algorithm for feature imitation.

``FGDDistill`` is MMRazor's ``FpnTeacherDistill`` (the teacher runs only
``extract_feat``: backbone and neck, under ``no_grad``) with the guards this
method needs:

* the teacher is in eval mode as a whole (not only its BN layers) whenever
  the algorithm trains, and its parameters never require gradients
  (checked before every iteration by ``DistillGuardHook``, with the
  optimizer check, so that every launcher runs them);
* checkpoints leave the frozen teacher out: ``state_dict()`` has no
  ``teacher.*`` keys, copies of the algorithm (mmengine's ``EMAHook``)
  share the teacher instead of copying it, and loading keeps the teacher
  built from ``teacher_ckpt`` (a checkpoint that still holds a teacher
  loads, that teacher ignored);
* ``architecture`` and ``teacher`` may name a local config file
  (``cfg_path='path/to/config.py'``) as well as MMRazor's ``pkg::`` paths;
* ``teacher_ckpt`` is required unless ``teacher_ckpt_required=False``, is
  read by the safe loader (``fgd_mmrazor.utils.checkpoint``), and a
  checkpoint that leaves backbone or neck weights unloaded, or gives them
  meta tensors or non-finite values, is an error that names the key;
* bad inputs fail loudly: a non-finite imitation loss raises
  ``FloatingPointError`` naming the level and whether the teacher's or the
  student's feature is non-finite (read one step later, from the value the
  runner already logged: no extra wait for the device), and a mask that
  stayed empty because no ground-truth box reached it (for the first
  ``warn_empty_masks_after`` iterations, or a whole epoch) is warned about
  once;
* the teacher and the adapters are built without drawing from the random
  streams (``preserve_rng``), so that with the same seed the student is
  initialised exactly as the same student trained alone: a distilled run
  and its baseline differ by the imitation only, not by the draw of the
  initial weights (tests/test_models/test_algorithms.py).

The imitated layers and their feature shapes are the distiller's concern
(``FGDDistiller.prepare_from_student/teacher``).
"""
import contextlib
import copy
import math
import os.path as osp
import random
from typing import Dict, Iterator, Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel, revert_sync_batchnorm
from torch import nn
from mmrazor.models.algorithms import FpnTeacherDistill
from mmrazor.registry import MODELS

from ...utils.checkpoint import load_teacher_checkpoint

__all__ = ['FGDDistill', 'resolve_model_cfg', 'preserve_rng']


@contextlib.contextmanager
def preserve_rng() -> Iterator[None]:
    """Restore the torch (CPU and CUDA), numpy and Python random states on
    exit: what runs inside draws no number from the caller's streams."""
    states = (torch.get_rng_state(), np.random.get_state(),
              random.getstate())
    cuda = torch.cuda.get_rng_state_all() if \
        torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def resolve_model_cfg(cfg: Union[BaseModel, Dict]) -> Union[BaseModel, Dict]:
    """Expand ``dict(cfg_path='local/config.py')`` to that config's model.

    MMRazor resolves only installed ``pkg::`` paths (through
    ``mmengine.hub.get_model``). A local file is read here; its model is
    built in the file's ``default_scope`` (e.g. ``mmyolo``). Other dicts and
    built models are returned unchanged.
    """
    if not isinstance(cfg, dict) or 'cfg_path' not in cfg or \
            '::' in cfg['cfg_path'] or cfg.get('type'):
        return cfg
    path = cfg['cfg_path']
    if not osp.isfile(path):
        raise FileNotFoundError(f'model config {path!r} does not exist')
    file_cfg = Config.fromfile(path)
    # Keep the ConfigDict: heads read test_cfg by attribute.
    model = file_cfg.model
    scope = file_cfg.get('default_scope')
    if scope and '_scope_' not in model:
        model['_scope_'] = scope
    return model


@MODELS.register_module()
class FGDDistill(FpnTeacherDistill):
    """Feature-imitation distillation with a frozen, neck-only teacher.

    Args:
        distiller (dict): Distiller config, usually ``FGDDistiller``.
        teacher (dict | BaseModel): Teacher config (e.g. an mmyolo model
            dict with ``_scope_='mmyolo'``) or model.
        teacher_ckpt (str, optional): Teacher checkpoint path or URL.
        teacher_ckpt_required (bool): Fail when ``teacher_ckpt`` is None.
            Set False only for tests and benchmarks that do not need a
            trained teacher. Defaults to True.
        warn_empty_masks_after (int, optional): Warn when the imitation
            mask was empty for every image of the first this many training
            iterations (or of a whole epoch): no ground-truth box reached
            it. None: never. Defaults to 50.
        **kwargs: ``FpnTeacherDistill`` arguments (``architecture``, ...).
    """

    def __init__(self,
                 distiller: dict,
                 teacher: Union[BaseModel, Dict],
                 teacher_ckpt: Optional[str] = None,
                 teacher_ckpt_required: bool = True,
                 teacher_trainable: bool = False,
                 warn_empty_masks_after: Optional[int] = 50,
                 **kwargs) -> None:
        self._warn_empty_after = warn_empty_masks_after
        if teacher_trainable:
            raise ValueError('FGDDistill imitates a frozen teacher; '
                             'teacher_trainable=True is not supported')
        if teacher_ckpt is None and teacher_ckpt_required:
            raise ValueError(
                'FGDDistill: teacher_ckpt is not set. Distilling from an '
                'untrained teacher teaches nothing: pass the teacher '
                'checkpoint (e.g. --cfg-options '
                'model.teacher_ckpt=/path/to/teacher.pth), or set '
                'model.teacher_ckpt_required=False for a smoke test.')
        if teacher_ckpt is not None and '://' not in teacher_ckpt and \
                not osp.isfile(teacher_ckpt):
            raise FileNotFoundError(
                f'FGDDistill: teacher_ckpt {teacher_ckpt!r} does not exist. '
                'Set model.teacher_ckpt to the checkpoint of the teacher '
                'config.')
        teacher = resolve_model_cfg(teacher)
        architecture = resolve_model_cfg(kwargs.pop('architecture'))
        if isinstance(architecture, dict):
            architecture = MODELS.build(architecture)
        # Everything built after the student (adapters, teacher) and the
        # build-time checks draw no random number: the runner's
        # init_weights() then initialises the student from the same random
        # state as the student trained alone with the same seed.
        with preserve_rng():
            self._build_parts(architecture, distiller, teacher,
                              teacher_ckpt, **kwargs)

    def _build_parts(self, architecture, distiller, teacher, teacher_ckpt,
                     **kwargs) -> None:
        # The parent loads teacher_ckpt with mmengine's loader; load it here
        # instead, with the checks above and below.
        super().__init__(
            architecture=architecture,
            distiller=distiller,
            teacher=teacher,
            teacher_ckpt=None,
            teacher_trainable=False,
            **kwargs)
        self.teacher_ckpt = teacher_ckpt
        self.guarded = False  # set by DistillGuardHook
        self._warned_unguarded = False
        self._logged_fat_checkpoint = False
        self._pending_finite = None
        self._boxes = dict(iters=0, boxes=0, epoch=None, epoch_iters=0,
                           epoch_boxes=0, warned=False)
        self._register_state_dict_hook(self._drop_teacher_state)
        self._register_load_state_dict_pre_hook(self._fill_teacher_state,
                                                with_module=True)
        if teacher_ckpt is not None:
            load_teacher_checkpoint(self.teacher, teacher_ckpt)
            self.teacher._is_init = True
        else:
            MMLogger.get_current_instance().warning(
                'FGDDistill: no teacher_ckpt, the teacher is untrained.')
        self.teacher.eval()
        if not torch.cuda.is_available():
            # mmyolo's YOLODetector turns BN into SyncBN when the world
            # size is > 1; SyncBN needs GPUs. On CPU (gloo DDP) the BN
            # layers stay per-process BN.
            revert_sync_batchnorm(self.architecture)
            revert_sync_batchnorm(self.teacher)

    def loss(self, batch_inputs, data_samples=None) -> dict:
        """MMRazor's loss, with the imitation masks computed before the
        teacher's and the student's forwards are queued (on a GPU the
        mask waits for the device: at this point only for the batch).

        Warns once if no :class:`DistillGuardHook` ran (the optimizer and
        teacher checks live there, so that every launcher runs them)."""
        if not self.guarded and not self._warned_unguarded:
            self._warned_unguarded = True
            MMLogger.get_current_instance().warning(
                'FGDDistill: no DistillGuardHook ran before training, so '
                'the optimizer and the frozen teacher are not checked. '
                "Add dict(type='DistillGuardHook') to custom_hooks "
                '(tools/train.py does this itself).')
        self._check_last_step_finite()
        recorder = getattr(self.distiller, 'mask_recorder', None)
        if recorder is not None and data_samples is not None and \
                not self.distillation_stopped:
            boxes = recorder.prime(batch_inputs, data_samples,
                                   cells=self.distiller.reads_mask_cells)
            if recorder.mode != 'full':
                self._count_boxes(boxes)
        losses = super().loss(batch_inputs, data_samples)
        self._queue_finite_check(losses)
        return losses

    # -- bad inputs fail loudly ----------------------------------------
    def _count_boxes(self, num_boxes: int) -> None:
        """Warn once when no box reached the mask for the first
        ``warn_empty_masks_after`` iterations or for a whole epoch."""
        state = self._boxes
        if state['warned'] or self._warn_empty_after is None:
            return
        epoch = MessageHub.get_current_instance().get_info('epoch')
        where = None
        if epoch != state['epoch']:
            if state['epoch'] is not None and state['epoch_iters'] and \
                    not state['epoch_boxes']:
                where = f'every iteration of epoch {state["epoch"] + 1}'
            state.update(epoch=epoch, epoch_iters=0, epoch_boxes=0)
        state['iters'] += 1
        state['boxes'] += num_boxes
        state['epoch_iters'] += 1
        state['epoch_boxes'] += num_boxes
        if state['iters'] == self._warn_empty_after and not state['boxes']:
            where = f'the first {state["iters"]} training iterations'
        if where:
            state['warned'] = True
            MMLogger.get_current_instance().warning(
                f'FGDDistill: the imitation mask was empty for every image '
                f'of {where}: no ground-truth box reached the mask, so the '
                'student imitates nothing. Check that the annotations\' '
                'category ids are those of the dataset\'s categories and '
                'that metainfo.classes names them (boxes of other '
                'categories are dropped when the data is loaded).')

    def _queue_finite_check(self, losses: dict) -> None:
        names = {
            self.distiller.loss_name(level): level
            for level in getattr(self.distiller, 'level_names', [])
        }
        found = {n: losses[f'distill.{n}'] for n in names
                 if f'distill.{n}' in losses}
        if not found or not hasattr(self.distiller, 'finite_flags'):
            self._pending_finite = None
            return
        with torch.no_grad():
            flags = self.distiller.finite_flags(found)
        self._pending_finite = (
            flags, MessageHub.get_current_instance().get_info('iter'))

    def _check_last_step_finite(self) -> None:
        """Raise if the previous step's imitation loss was not finite.

        In a runner, the values the runner logged for that step are read
        (host floats: no wait for the device); the flags of
        :meth:`FGDDistiller.finite_flags` are read only when one is not
        finite, or outside a runner."""
        pending, self._pending_finite = self._pending_finite, None
        if pending is None:
            return
        flags, iteration = pending
        hub = MessageHub.get_current_instance()
        levels = self.distiller.level_names
        if iteration is not None and hub.get_info('iter') == iteration + 1:
            logged = [hub.log_scalars.get(
                f'train/distill.{self.distiller.loss_name(level)}')
                      for level in levels]
            if all(b is not None and math.isfinite(b.current())
                   for b in logged):
                return
        for index, (loss, student, teacher) in enumerate(flags.tolist()):
            if loss and student and teacher:
                continue
            level = levels[index]
            t_layer = self.distiller.teacher_layers[index]
            s_layer = self.distiller.student_layers[index]
            step = '' if iteration is None else \
                f' at iteration {iteration + 1}'
            if not teacher:
                why = (f"the teacher's feature ({t_layer}) is not "
                       'finite: check the teacher checkpoint and that the '
                       'teacher was trained with the student\'s data '
                       'preprocessor')
            elif not student:
                why = (f"the student's feature ({s_layer}) is not "
                       'finite: the student diverged (lower the learning '
                       'rate or the imitation loss weight)')
            else:
                why = ('both features are finite, so the adapter or the '
                       'loss overflowed (lower the imitation loss weight '
                       'or the learning rate)')
            raise FloatingPointError(
                f'FGDDistill: the imitation loss of level {level!r} '
                f'({self.distiller.loss_name(level)}) was not finite'
                f'{step}: {why}.')

    # -- checkpoints without the frozen teacher ------------------------
    def _drop_teacher_state(self, module, state_dict, prefix,
                            local_metadata) -> None:
        """State-dict hook: the frozen teacher is not saved (it is rebuilt
        from ``teacher_ckpt``)."""
        key_prefix = prefix + 'teacher.'
        for key in [k for k in state_dict if k.startswith(key_prefix)]:
            del state_dict[key]

    def _fill_teacher_state(self, module, state_dict, prefix, *args) -> None:
        """Load pre-hook: the teacher keeps the weights it was built with.

        Checkpoints have no ``teacher.*`` keys; they are filled in with the
        teacher's own tensors (no "missing keys" noise, strict loading
        works). Checkpoints written before the teacher was left out hold
        it: with a ``teacher_ckpt`` those weights are ignored, so that a
        resumed run imitates the teacher it started with.
        """
        key_prefix = prefix + 'teacher.'
        present = [k for k in state_dict if k.startswith(key_prefix)]
        if present and self.teacher_ckpt is None:
            return  # an old checkpoint is the only source of the teacher
        if present and not self._logged_fat_checkpoint:
            self._logged_fat_checkpoint = True
            MMLogger.get_current_instance().info(
                f'FGDDistill: the checkpoint holds {len(present)} teacher '
                f'tensors; the teacher is kept from {self.teacher_ckpt}.')
        for key, value in self.teacher.state_dict().items():
            state_dict[key_prefix + key] = value

    def __deepcopy__(self, memo):
        """Copies (e.g. mmengine's ``EMAHook`` model) share the frozen
        teacher instead of copying it."""
        memo[id(self.teacher)] = self.teacher
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = copy.deepcopy(value, memo)
        return new

    # Training hooks of the student's own config reach into the detector,
    # e.g. mmdet's YOLOXModeSwitchHook sets ``model.bbox_head.use_l1``:
    # give them the student's heads.
    @property
    def bbox_head(self) -> nn.Module:
        """The student's ``bbox_head`` (for the student's own hooks)."""
        return self.architecture.bbox_head

    @property
    def rpn_head(self) -> nn.Module:
        """The student's ``rpn_head``."""
        return self.architecture.rpn_head

    @property
    def roi_head(self) -> nn.Module:
        """The student's ``roi_head``."""
        return self.architecture.roi_head

    def train(self, mode: bool = True) -> 'FGDDistill':
        """Train the student and adapters; keep the teacher in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self
