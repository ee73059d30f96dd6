# MMRazor's PKD (Pearson-correlation feature distillation, Cao et al. 2022)
# on the same pair, neck levels and adapters as ../fgd_yolov5s_from_l.py.
# Loss settings: mmrazor's PKD configs.
_base_ = ['../fgd_yolov5s_from_l.py', '../_base_/distill_losses.py']

model = dict(
    distiller=dict(
        loss=_base_.pkd_loss,
        loss_prefix='loss_pkd',
        mask=None))
