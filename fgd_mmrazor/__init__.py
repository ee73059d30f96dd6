"""Fine-grained feature imitation distillation (Wang et al., CVPR 2019)
for object detectors, as an MMRazor plugin.

Importing the package makes mmrazor importable on torch 2.x (``compat``),
makes every checkpoint route read through the safe loader
(``fgd_mmrazor.utils.checkpoint``), and registers the models into
MMRazor's registries.
"""
from . import compat

compat.apply()  # must run before the first ``import mmrazor``

from .ops import (featmap_sizes_for, gt_box_masks, imitation_mask,  # noqa
                  imitation_masks)
from .utils.checkpoint import register_checkpoint_loader  # noqa: E402
from .version import __version__  # noqa: E402

register_checkpoint_loader()

from .engine import CPUAmpOptimWrapper  # noqa: E402,F401
from .models import (FGDDistill, FGDDistiller, ImitationMaskLoss,  # noqa
                     ImitationMaskRecorder)

__all__ = [
    '__version__', 'imitation_mask', 'imitation_masks', 'gt_box_masks',
    'featmap_sizes_for', 'ImitationMaskLoss', 'ImitationMaskRecorder',
    'FGDDistiller', 'FGDDistill'
]
