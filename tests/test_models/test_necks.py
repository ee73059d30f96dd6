"""ProjectedYOLOv5PAFPN: YOLOv5's PAFPN with outputs of chosen widths."""
import torch
from mmengine.registry import init_default_scope

import fgd_mmrazor  # noqa: F401


def test_projected_pafpn_output_widths():
    from mmyolo.registry import MODELS
    init_default_scope('mmyolo')
    neck = MODELS.build(
        dict(type='ProjectedYOLOv5PAFPN', in_channels=[32, 96, 320],
             out_channels=[128, 256, 512], widen_factor=1.0,
             deepen_factor=0.33))
    feats = [torch.rand(2, 32, 16, 12), torch.rand(2, 96, 8, 6),
             torch.rand(2, 320, 4, 3)]
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(2, 128, 16, 12),
                                              (2, 256, 8, 6),
                                              (2, 512, 4, 3)]
    # the projections are trained convs with BN (YOLOv5PAFPN's are
    # identities)
    assert all(layer.conv.kernel_size == (1, 1) and layer.with_norm
               for layer in neck.out_layers)
