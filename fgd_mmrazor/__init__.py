"""Fine-grained feature imitation distillation (Wang et al., CVPR 2019)
for object detectors, as an MMRazor plugin.

Importing the package makes mmrazor importable on torch 2.x (``compat``),
allow-lists the types of mmengine checkpoints for ``weights_only`` loading,
and registers the models into MMRazor's registries.
"""
from . import compat

compat.apply()  # must run before the first ``import mmrazor``

from .ops import (featmap_sizes_for, gt_box_masks, imitation_mask,  # noqa
                  imitation_masks)
from .utils.checkpoint import register_safe_globals  # noqa: E402
from .version import __version__  # noqa: E402

register_safe_globals()

from .models import (FGDDistill, FGDDistiller, ImitationMaskLoss,  # noqa
                     ImitationMaskRecorder)

__all__ = [
    '__version__', 'imitation_mask', 'imitation_masks', 'gt_box_masks',
    'featmap_sizes_for', 'ImitationMaskLoss', 'ImitationMaskRecorder',
    'FGDDistiller', 'FGDDistill'
]
