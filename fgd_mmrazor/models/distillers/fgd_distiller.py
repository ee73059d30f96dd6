"""A ``ConfigurableDistiller`` that writes its per-level blocks itself.

Feature imitation on a detector neck needs, per level, two feature
recorders, an adaptation connector, a loss and its forward mapping: five
near-identical blocks per level in a plain ``ConfigurableDistiller`` config.
``FGDDistiller`` generates them from the lists of imitated layers and
channels, and adds the ``ImitationMaskRecorder`` that gives the masks. All
the machinery (recorders, connectors, ``compute_distill_losses``) is
MMRazor's own; the generated blocks can be extended or overridden with the
usual ``student_recorders``/``connectors``/... arguments.

The same distiller serves MMRazor's other feature losses on the same
layers (``loss=dict(type='ChannelWiseDivergence', ...)``, ``mask=None``).

Example (YOLOv5-s from YOLOv5-l)::

    distiller=dict(
        type='FGDDistiller',
        student_layers=['neck.out_layers.0', 'neck.out_layers.1',
                        'neck.out_layers.2'],
        student_channels=[128, 256, 512],
        teacher_channels=[256, 512, 1024],
        level_names=['p3', 'p4', 'p5'],
        loss=dict(type='ImitationMaskLoss', loss_weight=1.0),
        mask=dict(type='ImitationMask', psi=0.5))

generates the losses ``loss_imitation_p3`` ... (logged as
``distill.loss_imitation_p3``), the connectors ``adapt_p3`` ... and the
recorders ``feat_p3`` ... and ``imitation_mask``.

``student_grad_scale`` (set per iteration by
:class:`~fgd_mmrazor.engine.AdapterWarmupHook`) scales the imitation
gradient that reaches the student through the adapters, without changing
the loss value or the adapters' own gradient: 0 trains the adapters only,
1 is the plain method. ``imitation_scale`` (default 1) multiplies the
imitation losses themselves; the hook's ``delay_iters`` sets it to 0 at
the start of training.
"""
import copy
import difflib
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor
from mmengine.dist import all_reduce, get_world_size
from mmengine.registry import DefaultScope
from mmrazor.models.architectures.connectors import ConvModuleConnector
from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS

from ...ops.masked_conv import is_same_size_conv, masked_conv2d_cells
from ..losses.imitation_mask_loss import ImitationMaskLoss, check_shapes

__all__ = ['FGDDistiller']

MASK_RECORDER = 'imitation_mask'


def _default_connector() -> dict:
    # The paper's adaptation layer: a 3x3 conv. No ReLU (see the
    # "Deviations" note in docs/method.md: neck features of SiLU networks
    # are partly negative, which a ReLU could not reproduce).
    return dict(
        type='ConvModuleConnector',
        kernel_size=3,
        padding=1,
        norm_cfg=None,
        act_cfg=None)


def _check_layers(model, layers: Sequence[str], who: str,
                  arg: str) -> None:
    """A clear error for imitated layers that are not modules of the model
    (MMRazor's recorder would fail with a bare assertion)."""
    names = dict(model.named_modules())
    missing = [name for name in layers if name not in names]
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, list(names), n=3)
        hints.append(f'{name!r}' + (f' (did you mean {close}?)'
                                    if close else ''))
    raise ValueError(
        f'FGDDistiller: {", ".join(hints)} is not a module of the {who} '
        f'({type(model).__name__}). Set {arg} to modules of its neck, '
        f'e.g. from print(model.neck) (docs/distil_your_own_pair.md).')


@MODELS.register_module()
class FGDDistiller(ConfigurableDistiller):
    """Per-level feature imitation with generated recorders, adapters,
    losses and mappings.

    Args:
        student_layers (Sequence[str]): Student modules whose outputs are
            imitated, one per level.
        student_channels (Sequence[int]): Their channels.
        teacher_channels (Sequence[int]): Channels of the teacher's layers.
        teacher_layers (Sequence[str], optional): Teacher modules. Defaults
            to ``student_layers``.
        level_names (Sequence[str], optional): Names used in the generated
            keys. Defaults to ``level0``, ``level1``, ...
        loss (dict): Loss config, copied per level. Defaults to
            ``ImitationMaskLoss`` with the paper's weight.
        sparse_adapters (bool): Evaluate the adapter only at the masked
            cells when that is exact (a plain same-size conv adapter, the
            ``ImitationMaskLoss`` with a mask): same loss and gradients,
            at a cost proportional to the mask instead of the map. Defaults
            to True.
        loss_prefix (str): Generated loss names are
            ``f'{loss_prefix}_{level_name}'``; must contain 'loss'.
            Defaults to 'loss_imitation'.
        connector (dict, optional): Adapter config (the channels are filled
            in per level, see ``connector_channel_keys``). Defaults to a
            plain 3x3 conv. None feeds the student feature to the loss
            unchanged.
        adapter_init_std (float, optional): Initialise the adapters' conv
            weights N(0, std^2) and their biases 0 in ``init_weights``
            (after the connectors' own initialisation, which for
            ``ConvModuleConnector`` is Kaiming's); the authors' code uses
            1e-4. Defaults to None (the connector's own).
        connector_channel_keys (tuple[str, str]): The connector's argument
            names for the student's and the teacher's channels. Defaults to
            ``('in_channel', 'out_channel')`` (``ConvModuleConnector``);
            e.g. ``('student_channels', 'teacher_channels')`` for
            ``MGDConnector``.
        mask (dict, optional): Mask recorder config (``ImitationMaskRecorder``
            on the student). Its levels follow ``student_layers``. None
            calls the loss without a mask (e.g. for CWD, PKD, MGD).
        num_pos (str): The normaliser N_p of the masked imitation losses.
            'all_levels' (the default): the mask cells of all levels
            together, so that every masked cell weighs the same whatever
            its level (the paper's single-map ``2 N_p`` over the union of
            the levels' cells). 'per_level': each level's loss divides by
            its own cells, so a level with few cells (e.g. P5 on small
            objects) weighs as much as one with many.
        **kwargs: ``ConfigurableDistiller`` arguments, merged over the
            generated ones.
    """

    def __init__(self,
                 student_layers: Sequence[str],
                 student_channels: Sequence[int],
                 teacher_channels: Sequence[int],
                 teacher_layers: Optional[Sequence[str]] = None,
                 level_names: Optional[Sequence[str]] = None,
                 loss: dict = dict(type='ImitationMaskLoss',
                                   loss_weight=0.01),
                 loss_prefix: str = 'loss_imitation',
                 sparse_adapters: bool = True,
                 connector: Optional[dict] = _default_connector(),
                 connector_channel_keys: Sequence[str] = ('in_channel',
                                                          'out_channel'),
                 adapter_init_std: Optional[float] = None,
                 mask: Optional[dict] = dict(type='ImitationMask'),
                 num_pos: str = 'all_levels',
                 student_recorders: Optional[Dict[str, dict]] = None,
                 teacher_recorders: Optional[Dict[str, dict]] = None,
                 connectors: Optional[Dict[str, dict]] = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 loss_forward_mappings: Optional[Dict[str, dict]] = None,
                 **kwargs) -> None:
        teacher_layers = list(teacher_layers or student_layers)
        num = len(student_layers)
        level_names = list(level_names or [f'level{i}' for i in range(num)])
        lengths = dict(
            student_layers=len(student_layers),
            teacher_layers=len(teacher_layers),
            student_channels=len(student_channels),
            teacher_channels=len(teacher_channels),
            level_names=len(level_names))
        if len(set(lengths.values())) != 1:
            raise ValueError('FGDDistiller: give one entry per imitated '
                             f'level in each list, got lengths {lengths}')
        if num_pos not in ('all_levels', 'per_level'):
            raise ValueError("FGDDistiller: num_pos must be 'all_levels' or "
                             f"'per_level', got {num_pos!r}")
        if 'loss' not in loss_prefix:
            raise ValueError('FGDDistiller: loss_prefix must contain "loss" '
                             'or mmengine will not backpropagate the loss, '
                             f'got {loss_prefix!r}')
        if mask is not None:
            mask = copy.deepcopy(mask)
            if 'levels' not in mask and mask.get('base_anchors') is None:
                # Levels of the prior generator in imitation order.
                mask.setdefault('levels', list(range(num)))
            given = mask.get('base_anchors')
            if given is not None and len(given) != num:
                raise ValueError(
                    f'FGDDistiller: {len(given)} anchor sets for {num} '
                    'imitated levels; give one per entry of student_layers')

        gen_s_rec, gen_t_rec, gen_conn, gen_loss, gen_map = {}, {}, {}, {}, {}
        for idx, name in enumerate(level_names):
            feat = f'feat_{name}'
            gen_s_rec[feat] = dict(
                type='ModuleOutputs', source=student_layers[idx])
            gen_t_rec[feat] = dict(
                type='ModuleOutputs', source=teacher_layers[idx])
            mapping = dict(
                preds_S=dict(from_student=True, recorder=feat),
                preds_T=dict(from_student=False, recorder=feat))
            if connector is not None:
                conn = copy.deepcopy(connector)
                s_key, t_key = connector_channel_keys
                conn.update({
                    s_key: student_channels[idx],
                    t_key: teacher_channels[idx]
                })
                gen_conn[f'adapt_{name}'] = conn
                mapping['preds_S']['connector'] = f'adapt_{name}'
            if mask is not None:
                mapping['mask'] = dict(
                    from_student=True, recorder=MASK_RECORDER, data_idx=idx)
            loss_name = f'{loss_prefix}_{name}'
            gen_loss[loss_name] = copy.deepcopy(loss)
            gen_map[loss_name] = mapping
        if mask is not None:
            gen_s_rec[MASK_RECORDER] = mask

        # The generated blocks are mmrazor types: build them in mmrazor's
        # scope whatever the caller's default scope is (e.g. mmyolo).
        with DefaultScope.overwrite_default_scope('mmrazor'):
            self._build(gen_s_rec, gen_t_rec, gen_conn, gen_loss, gen_map,
                        student_recorders, teacher_recorders, connectors,
                        distill_losses, loss_forward_mappings, **kwargs)
        self.level_names: List[str] = level_names
        self.student_layers = list(student_layers)
        self.teacher_layers = teacher_layers
        self.student_grad_scale = 1.0
        self.imitation_scale = 1.0
        self.student_channels = list(student_channels)
        self.teacher_channels = list(teacher_channels)
        self.has_adapters = connector is not None
        self.adapter_init_std = adapter_init_std
        self.sparse_adapters = sparse_adapters
        self.num_pos = num_pos

    def init_weights(self) -> None:
        """The connectors' own initialisation, then ``adapter_init_std``."""
        super().init_weights()
        if self.adapter_init_std is None:
            return
        for conn in self.connectors.values():
            for module in conn.modules():
                if isinstance(module, torch.nn.Conv2d):
                    torch.nn.init.normal_(module.weight, 0.0,
                                          self.adapter_init_std)
                    if module.bias is not None:
                        torch.nn.init.zeros_(module.bias)

    def prepare_from_student(self, model) -> None:
        """Check the imitated layers exist, then MMRazor's preparation."""
        _check_layers(model, self.student_layers, 'student',
                      'student_layers')
        super().prepare_from_student(model)

    def prepare_from_teacher(self, model) -> None:
        """Check the imitated layers exist, then MMRazor's preparation."""
        _check_layers(model, self.teacher_layers, 'teacher',
                      'teacher_layers')
        super().prepare_from_teacher(model)

    def get_record(self,
                   recorder: str,
                   from_student: bool,
                   record_idx: int = 0,
                   data_idx: Optional[int] = None,
                   connector: Optional[str] = None,
                   connector_idx: Optional[int] = None):
        """MMRazor's ``get_record``, with the gradient into the student's
        features scaled by ``student_grad_scale`` (before the adapter, or
        on the feature itself without one)."""
        if not from_student or recorder == MASK_RECORDER or \
                self.student_grad_scale == 1.0:
            return super().get_record(recorder, from_student, record_idx,
                                      data_idx, connector, connector_idx)
        data = self._scaled(super().get_record(recorder, from_student,
                                               record_idx, data_idx))
        if connector:
            data = self.connectors[connector](data)
            if connector_idx is not None:
                data = data[connector_idx]
        return data

    def _scaled(self, data):
        """Same value; d(data)/d(student) = ``student_grad_scale``."""
        scale = self.student_grad_scale
        if scale == 1.0 or not isinstance(data, torch.Tensor):
            return data
        return data.detach() if scale == 0 else \
            data * scale + data.detach() * (1.0 - scale)

    def _sparse_conv(self, loss_name: str) -> Optional[torch.nn.Conv2d]:
        """The adapter conv of ``loss_name`` if the loss can be computed
        from the masked cells only (see ``sparse_adapters``)."""
        if not self.sparse_adapters:
            return None
        mapping = self.loss_forward_mappings[loss_name]
        if not isinstance(self.distill_losses[loss_name],
                          ImitationMaskLoss) or set(mapping) != {
                              'preds_S', 'preds_T', 'mask'}:
            return None
        rec = mapping['preds_S']
        if not rec.get('from_student') or rec.get('connector_idx') is not \
                None or not rec.get('connector'):
            return None
        conn = self.connectors[rec['connector']]
        module = getattr(conn, 'conv_module', None)
        if type(conn) is not ConvModuleConnector or module is None or \
                module.with_norm or module.with_activation or \
                not is_same_size_conv(module.conv):
            return None
        return module.conv

    def _masked_losses(self) -> List[str]:
        """Names of the ``ImitationMaskLoss`` losses that read a mask."""
        return [
            name for name, mapping in self.loss_forward_mappings.items()
            if isinstance(self.distill_losses[name], ImitationMaskLoss)
            and 'mask' in mapping
        ]

    def _global_num_pos(self, masked: List[str]) -> Dict[str, Tensor]:
        """N_p of each masked loss over the whole batch, all ranks together.

        One all-reduce of the (detached) mask counts; ``all_levels`` gives
        every masked loss the sum over the levels.
        """
        counts = torch.stack([
            self.get_record(**self.loss_forward_mappings[name]
                            ['mask']).detach().sum().float()
            for name in masked
        ])
        all_reduce(counts, op='sum')  # no-op without a process group
        if self.num_pos == 'all_levels':
            counts = counts.sum().expand(len(masked))
        return dict(zip(masked, counts))

    def compute_distill_losses(self) -> dict:
        """MMRazor's loss computation, with one N_p for the whole batch.

        Masked imitation losses divide by the mask cells of the whole
        batch, over all ranks (see :meth:`_global_num_pos`), and are
        multiplied by the world size: DDP averages the ranks' gradients,
        so a run on W processes gets exactly the loss gradients of one
        process on the same total batch (the mean of the ranks' logged
        values is that loss). Imitation losses whose adapter can be
        evaluated at the masked cells only are computed that way.
        """
        masked = self._masked_losses()
        num_pos = self._global_num_pos(masked) if masked else {}
        world_size = get_world_size()
        losses = {}
        for loss_name, mapping in self.loss_forward_mappings.items():
            loss_module = self.distill_losses[loss_name]
            conv = self._sparse_conv(loss_name)
            extra = dict(num_pos=num_pos[loss_name]) if \
                loss_name in num_pos else {}
            scale = self.imitation_scale * (
                world_size if loss_name in num_pos else 1)
            if conv is None:
                losses[loss_name] = scale * loss_module(
                    **{
                        key: self.get_record(**record)
                        for key, record in mapping.items()
                    }, **extra)
                continue
            s_rec = {
                k: v
                for k, v in mapping['preds_S'].items() if k != 'connector'
            }
            # The gradient scale is applied by get_record.
            student = self.get_record(**s_rec)
            teacher = self.get_record(**mapping['preds_T'])
            mask = self.get_record(**mapping['mask'])
            if student.shape[1] != conv.in_channels:
                raise ValueError(
                    f'FGDDistiller: {loss_name}: the student feature has '
                    f'{student.shape[1]} channels but the adapter expects '
                    f'{conv.in_channels}; fix student_channels.')
            check_shapes((student.shape[0], conv.out_channels,
                          *student.shape[2:]), teacher.shape, mask)
            adapted, (b, i, j) = masked_conv2d_cells(student, mask, conv)
            target = teacher.permute(0, 2, 3, 1)[b, i, j]
            losses[loss_name] = scale * loss_module.forward_cells(
                adapted, target, num_pos[loss_name])
        return losses

    def _build(self, gen_s_rec, gen_t_rec, gen_conn, gen_loss, gen_map,
               student_recorders, teacher_recorders, connectors,
               distill_losses, loss_forward_mappings, **kwargs) -> None:
        """``ConfigurableDistiller.__init__`` on generated + given blocks."""
        super().__init__(
            student_recorders={
                **gen_s_rec,
                **(student_recorders or {})
            },
            teacher_recorders={
                **gen_t_rec,
                **(teacher_recorders or {})
            },
            connectors={
                **gen_conn,
                **(connectors or {})
            },
            distill_losses={
                **gen_loss,
                **(distill_losses or {})
            },
            loss_forward_mappings={
                **gen_map,
                **(loss_forward_mappings or {})
            },
            **kwargs)
