# MMRazor's PKD (Pearson-correlation feature distillation, Cao et al. 2022)
# on the same pair, neck levels and adapters as ../fgd_yolov5s_from_l.py.
# Loss settings: mmrazor's PKD configs.
_base_ = '../fgd_yolov5s_from_l.py'

model = dict(
    distiller=dict(
        loss=dict(_delete_=True, type='PKDLoss', loss_weight=6),
        loss_prefix='loss_pkd',
        mask=None))
