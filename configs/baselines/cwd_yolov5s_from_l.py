# MMRazor's channel-wise distillation (CWD, Shu et al. 2021) on the same
# pair, neck levels and adapters as ../fgd_yolov5s_from_l.py, for a
# comparison on equal terms. Loss settings: mmrazor's CWD configs.
_base_ = ['../fgd_yolov5s_from_l.py', '../_base_/distill_losses.py']

model = dict(
    distiller=dict(
        loss=_base_.cwd_loss,
        loss_prefix='loss_cwd',
        mask=None))
