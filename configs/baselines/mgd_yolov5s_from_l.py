# MMRazor's masked generative distillation (MGD, Yang et al. 2022) on the
# same pair and neck levels as ../fgd_yolov5s_from_l.py; MGD's generator
# (MGDConnector) replaces the 3x3 adapter. Settings: mmrazor's MGD config.
_base_ = '../fgd_yolov5s_from_l.py'

model = dict(
    distiller=dict(
        loss=dict(_delete_=True, type='MGDLoss', alpha_mgd=0.00002),
        loss_prefix='loss_mgd',
        connector=dict(type='MGDConnector', lambda_mgd=0.65),
        connector_channel_keys=('student_channels', 'teacher_channels'),
        mask=None))
