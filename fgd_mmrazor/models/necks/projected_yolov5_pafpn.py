"""YOLOv5's PAFPN with its outputs projected to chosen widths.

mmyolo's ``YOLOv5PAFPN`` has identity out layers: its outputs keep the
widths of the backbone stages it is given. On a MobileNetV2 backbone
(stage widths 32 / 96 / 320 at strides 8 / 16 / 32) that makes teacher
features narrower than a YOLOv5-n student's (64 / 128 / 256), and the
imitation adapter would map the student down to them. This neck ends each
level with a 1x1 ``ConvModule`` (BN, activation) to ``out_channels``, so
that the imitated features are as wide as the head and the student need.

Config::

    neck=dict(type='ProjectedYOLOv5PAFPN', in_channels=[32, 96, 320],
              out_channels=[128, 256, 512], widen_factor=1.0,
              deepen_factor=0.33)
"""
from mmcv.cnn import ConvModule
from mmyolo.models.necks import YOLOv5PAFPN
from mmyolo.models.utils import make_divisible
from mmyolo.registry import MODELS
from torch import nn

__all__ = ['ProjectedYOLOv5PAFPN']


@MODELS.register_module()
class ProjectedYOLOv5PAFPN(YOLOv5PAFPN):
    """``YOLOv5PAFPN`` whose level ``i`` output is a 1x1 conv from
    ``in_channels[i]`` to ``out_channels[i]`` (both times
    ``widen_factor``). Arguments as ``YOLOv5PAFPN``."""

    def build_out_layer(self, idx: int) -> nn.Module:
        return ConvModule(
            make_divisible(self.in_channels[idx], self.widen_factor),
            make_divisible(self.out_channels[idx], self.widen_factor),
            1,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
