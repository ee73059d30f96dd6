# MMRazor's masked generative distillation (MGD, Yang et al. 2022) on the
# same pair and neck levels as ../fgd_yolov5s_from_l.py; MGD's generator
# (MGDConnector) replaces the 3x3 adapter. Settings: mmrazor's MGD config.
_base_ = ['../fgd_yolov5s_from_l.py', '../_base_/distill_losses.py']

model = dict(
    distiller=dict(
        loss=_base_.mgd_loss,
        loss_prefix='loss_mgd',
        connector=_base_.mgd_connector,
        connector_channel_keys=('student_channels', 'teacher_channels'),
        mask=None))
