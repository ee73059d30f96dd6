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
import contextlib
import copy
import difflib
import inspect
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS

from ..losses.imitation_mask_loss import check_shapes
from ..recorders import ImitationMaskRecorder

__all__ = ['FGDDistiller']

MASK_RECORDER = 'imitation_mask'


def _default_connector() -> dict:
    # The paper's adaptation layer: a 3x3 conv. No ReLU (see the
    # "Deviations" note in docs/method.md: neck features of SiLU networks
    # are partly negative, which a ReLU could not reproduce).
    return dict(type='MaskedConvConnector', kernel_size=3)


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
            cells when that is exact: when the connector and the loss both
            offer ``forward_cells`` (``MaskedConvConnector`` and
            ``ImitationMaskLoss``), the connector's ``supports_cells`` is
            true and the loss reads a mask. Same loss and gradients, at a
            cost proportional to the mask instead of the map. Defaults to
            True.
        loss_prefix (str): Generated loss names are
            ``f'{loss_prefix}_{level_name}'``; must contain 'loss'.
            Defaults to 'loss_imitation'.
        connector (dict, optional): Adapter config (the channels are filled
            in per level, see ``connector_channel_keys``). Defaults to a
            plain 3x3 conv (``MaskedConvConnector``). None feeds the
            student feature to the loss unchanged.
        adapter_init_std (float, optional): Initialise the adapters' conv
            weights N(0, std^2) and their biases 0 in ``init_weights``
            (after the connectors' own initialisation, which for
            MMRazor's ``ConvModuleConnector`` is Kaiming's); the authors'
            code uses
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
            objects) weighs as much as one with many. It applies to the
            losses that read a mask and take a ``num_pos`` argument.
        check_features (bool): When the algorithm prepares the teacher,
            run student and teacher once on a small blank image and check
            the imitated features against the configured channels and each
            other's sizes, so that a wrong config fails with a clear
            message before training. Defaults to True.
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
                 check_features: bool = True,
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
        keys = {}
        for idx, name in enumerate(level_names):
            feat = f'feat_{name}'
            keys[name] = dict(record=feat, index=idx,
                              loss=f'{loss_prefix}_{name}', connector=None)
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
                keys[name]['connector'] = f'adapt_{name}'
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
        self.check_features = check_features
        self.has_mask = mask is not None
        self._keys = keys
        self._student = None  # a list holding the student while preparing

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
        # Kept for the feature check of prepare_from_teacher, in a list so
        # that it is not registered as a submodule.
        self._student = [model]

    def prepare_from_teacher(self, model) -> None:
        """Check the imitated layers exist, then MMRazor's preparation and
        (``check_features``) the imitated features' shapes."""
        _check_layers(model, self.teacher_layers, 'teacher',
                      'teacher_layers')
        super().prepare_from_teacher(model)
        student, self._student = self._student, None
        if self.check_features and student:
            self.check_feature_shapes(student[0], model)

    @torch.no_grad()
    def check_feature_shapes(self, student: nn.Module, teacher: nn.Module,
                             size: int = 64) -> None:
        """Imitated features vs the configured channels, and student vs
        teacher spatial sizes, from one forward (``extract_feat``) of a
        blank ``size`` x ``size`` image through each model.

        Raises:
            ValueError: naming every level whose features do not fit.
        """
        shapes = {}
        try:
            shapes.update(_feature_shapes(student, self.student_layers,
                                          size))
            teacher_shapes = _feature_shapes(teacher, self.teacher_layers,
                                             size)
        except Exception as err:  # an unusual detector: checked at step 1
            MMLogger.get_current_instance().warning(
                f'FGDDistiller: could not check the imitated features on a '
                f'blank image ({err!r}); they are checked by the loss.')
            return
        problems = []
        for i, name in enumerate(self.level_names):
            s_layer, t_layer = self.student_layers[i], self.teacher_layers[i]
            s_shape, t_shape = shapes.get(s_layer), teacher_shapes.get(
                t_layer)
            if s_shape is None or t_shape is None or len(s_shape) != 4:
                continue  # not a feature map: left to the loss
            if s_shape[1] != self.student_channels[i]:
                problems.append(
                    f'{name}: student {s_layer} has {s_shape[1]} channels, '
                    f'student_channels says {self.student_channels[i]}')
            if t_shape[1] != self.teacher_channels[i]:
                problems.append(
                    f'{name}: teacher {t_layer} has {t_shape[1]} channels, '
                    f'teacher_channels says {self.teacher_channels[i]}')
            if s_shape[2:] != t_shape[2:]:
                problems.append(
                    f'{name}: student map {s_shape[2:]} but teacher map '
                    f'{t_shape[2:]} on a {size}x{size} input (imitate '
                    'layers of the same stride)')
            if not self.has_adapters and s_shape[1] != t_shape[1]:
                problems.append(
                    f'{name}: {s_shape[1]} student vs {t_shape[1]} teacher '
                    'channels and no adapter (connector=None)')
        if problems:
            raise ValueError('FGDDistiller: the imitated features do not '
                             'fit the distiller config: ' +
                             '; '.join(problems) + '. Fix student_channels '
                             '/ teacher_channels / the imitated layers.')

    # -- what tools read ---------------------------------------------------
    @property
    def mask_recorder(self) -> Optional[nn.Module]:
        """The ``ImitationMaskRecorder`` (None when ``mask=None``)."""
        return self.student_recorders.recorders.get(MASK_RECORDER) \
            if self.has_mask else None

    @property
    def reads_mask_cells(self) -> bool:
        """Whether a loss is computed at the masked cells only (the sparse
        path, which reads the mask recorder's cells)."""
        return any(self._cells_connector(name) is not None
                   for name in self.loss_forward_mappings)

    def adapter(self, level: str) -> Optional[nn.Module]:
        """The adapter (connector) of ``level``, None without one."""
        name = self._level(level)['connector']
        return None if name is None else self.connectors[name]

    def loss_name(self, level: str) -> str:
        """The key of ``level``'s loss (``f'{loss_prefix}_{level}'``)."""
        return self._level(level)['loss']

    def mask(self, level: str) -> Tensor:
        """The imitation mask (B, H, W) of ``level`` of the last forward."""
        if not self.has_mask:
            raise ValueError('FGDDistiller: this distiller has no mask '
                             '(mask=None)')
        return self.get_record(MASK_RECORDER, True,
                               data_idx=self._level(level)['index'])

    def features(self, level: str) -> Tuple[Tensor, Tensor]:
        """The student's and the teacher's imitated features of ``level``
        of the last forward, before the adapter."""
        record = self._level(level)['record']
        return self.get_record(record, True), self.get_record(record, False)

    def records(self, level: str) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """:meth:`features` of ``level`` and its mask (None without one),
        of the last training forward."""
        return (*self.features(level),
                self.mask(level) if self.has_mask else None)

    def finite_flags(self, losses: Dict[str, Tensor]) -> Tensor:
        """Whether each level's loss, student feature and teacher feature
        of the last forward are finite: a (levels, 3) bool tensor on the
        device, computed without waiting for it (read it later).

        Args:
            losses (dict): The distillation losses, by :meth:`loss_name`
                (levels without a loss in it are reported finite).
        """
        rows = []
        for level in self.level_names:
            record = self._level(level)['record']
            loss = losses.get(self.loss_name(level))
            student = super().get_record(record, True)
            teacher = super().get_record(record, False)
            rows.append(torch.stack([
                torch.isfinite(loss).all() if loss is not None else
                torch.ones((), dtype=torch.bool, device=student.device),
                torch.isfinite(student).all(),
                torch.isfinite(teacher).all()
            ]))
        return torch.stack(rows)

    def _level(self, level: str) -> dict:
        if level not in self._keys:
            raise KeyError(f'FGDDistiller: no level {level!r}; the levels '
                           f'are {self.level_names}')
        return self._keys[level]

    def get_record(self,
                   recorder: str,
                   from_student: bool,
                   record_idx: int = 0,
                   data_idx: Optional[int] = None,
                   connector: Optional[str] = None,
                   connector_idx: Optional[int] = None):
        """MMRazor's ``get_record``, with the recorded features in float32
        (under mixed precision they are recorded in fp16/bf16; see
        :meth:`compute_distill_losses`) and the gradient into the student's
        features scaled by ``student_grad_scale`` (before the adapter, or
        on the feature itself without one)."""
        data = self._record(recorder, from_student, record_idx, data_idx,
                            fp32=True)
        if connector:
            data = self.connectors[connector](data)
        if connector_idx is not None:
            data = data[connector_idx]
        return data

    def _record(self, recorder: str, from_student: bool,
                record_idx: int = 0, data_idx: Optional[int] = None,
                fp32: bool = True):
        """A record as recorded (``fp32=False``) or in float32, with the
        student's gradient scale applied; masks unchanged."""
        data = super().get_record(recorder, from_student, record_idx,
                                  data_idx)
        if recorder == MASK_RECORDER:
            return data
        if fp32:
            data = _as_fp32(data)
        return self._scaled(data) if from_student else data

    def _scaled(self, data):
        """Same value; d(data)/d(student) = ``student_grad_scale``."""
        scale = self.student_grad_scale
        if scale == 1.0 or not isinstance(data, torch.Tensor):
            return data
        return data.detach() if scale == 0 else \
            data * scale + data.detach() * (1.0 - scale)

    def _cells_connector(self, loss_name: str) -> Optional[nn.Module]:
        """The connector of ``loss_name`` if the loss can be computed from
        the masked cells only (see ``sparse_adapters``)."""
        if not self.sparse_adapters:
            return None
        mapping = self.loss_forward_mappings[loss_name]
        if not hasattr(self.distill_losses[loss_name], 'forward_cells') or \
                set(mapping) != {'preds_S', 'preds_T', 'mask'}:
            return None
        rec = mapping['preds_S']
        if not rec.get('from_student') or rec.get('connector_idx') is not \
                None or not rec.get('connector') or \
                {'connector', 'connector_idx'} & set(mapping['preds_T']):
            return None
        conn = self.connectors[rec['connector']]
        if not hasattr(conn, 'forward_cells') or \
                not getattr(conn, 'supports_cells', True):
            return None
        return conn

    def _masked_losses(self) -> List[str]:
        """Names of the losses that read a mask and take the normaliser
        ``num_pos``."""
        return [
            name for name, mapping in self.loss_forward_mappings.items()
            if 'mask' in mapping and 'num_pos' in inspect.signature(
                self.distill_losses[name].forward).parameters
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
        """MMRazor's loss computation, with one N_p for the whole batch,
        in float32.

        Masked imitation losses divide by the mask cells of the whole
        batch, over all ranks (see :meth:`_global_num_pos`), and are
        multiplied by the world size: DDP averages the ranks' gradients,
        so a run on W processes gets exactly the loss gradients of one
        process on the same total batch (the mean of the ranks' logged
        values is that loss). Imitation losses whose adapter can be
        evaluated at the masked cells only are computed that way.

        Under mixed precision (``--amp``) both networks' forwards run in
        fp16/bf16, and so would the adapters: the difference student -
        teacher would be formed from rounded adapter outputs. Here
        autocast is off and the features are cast to float32, so that the
        adapters, the difference and the loss are computed as in an fp32
        run from the same features. The sparse path casts the masked
        cells only (the gathered k x k neighbourhoods of the student, the
        teacher's vectors); the dense path (other losses, or
        ``sparse_adapters=False``) casts the maps (:meth:`get_record`).
        """
        with _no_autocast():
            return self._compute_distill_losses()

    def _compute_distill_losses(self) -> dict:
        masked = self._masked_losses()
        num_pos = self._global_num_pos(masked) if masked else {}
        world_size = get_world_size()
        losses = {}
        for loss_name, mapping in self.loss_forward_mappings.items():
            loss_module = self.distill_losses[loss_name]
            connector = self._cells_connector(loss_name)
            extra = dict(num_pos=num_pos[loss_name]) if \
                loss_name in num_pos else {}
            scale = self.imitation_scale * (
                world_size if loss_name in num_pos else 1)
            if connector is None:
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
            # As recorded (fp16/bf16 under AMP): the cells are cast, in
            # forward_cells (which computes in the adapter's fp32) and
            # below. The gradient scale is applied by _record.
            student = self._record(**s_rec, fp32=False)
            teacher = self._record(**mapping['preds_T'], fp32=False)
            mask = self.get_record(**mapping['mask'])
            adapted, (b, i, j) = connector.forward_cells(
                student, mask, self._recorded_cells(mapping['mask']))
            check_shapes((student.shape[0], adapted.shape[1],
                          *student.shape[2:]), teacher.shape, mask)
            target = _as_fp32(teacher.permute(0, 2, 3, 1)[b, i, j])
            losses[loss_name] = scale * loss_module.forward_cells(
                adapted, target, num_pos[loss_name])
        return losses

    def _recorded_cells(self, mask_record: dict):
        """The cells of the mask that ``mask_record`` reads, when its
        recorder gives them (all levels with one wait for the device);
        else None (the connector finds them)."""
        recorder = self.student_recorders.recorders.get(
            mask_record['recorder']) if mask_record.get('from_student') \
            else None
        if not isinstance(recorder, ImitationMaskRecorder) or \
                mask_record.get('data_idx') is None:
            return None
        return recorder.get_record_cells(mask_record.get(
            'record_idx', 0))[mask_record['data_idx']]

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


def _as_fp32(data):
    """Floating tensors (and tuples/lists of them) as float32."""
    if isinstance(data, torch.Tensor):
        return data.float() if data.is_floating_point() and \
            data.dtype != torch.float64 else data
    if isinstance(data, (tuple, list)):
        return type(data)(_as_fp32(d) for d in data)
    return data


@contextlib.contextmanager
def _no_autocast() -> Iterator[None]:
    """Autocast off on the CPU and, where there is one, the GPU."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.autocast('cpu', enabled=False))
        if torch.cuda.is_available():
            stack.enter_context(torch.autocast('cuda', enabled=False))
        yield


def _feature_shapes(model: nn.Module, layers: Sequence[str],
                    size: int) -> Dict[str, tuple]:
    """Output shapes of ``layers`` of ``model`` on a blank image (eval
    mode, the model's mode restored)."""
    shapes = {}
    modules = dict(model.named_modules())
    hooks = [
        modules[name].register_forward_hook(
            lambda m, i, o, n=name: shapes.__setitem__(n, tuple(o.shape)))
        for name in layers if name in modules
    ]
    mode = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else None
    try:
        model.extract_feat(torch.zeros(1, 3, size, size, device=device))
    finally:
        model.train(mode)
        for hook in hooks:
            hook.remove()
    return shapes
