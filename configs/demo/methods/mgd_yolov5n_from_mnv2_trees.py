# MMRazor's masked generative distillation (MGD, Yang et al., ECCV 2022) on
# the neck levels and warm-up of ../fgd_yolov5n_from_mnv2_trees.py: MGD's
# generator (MGDConnector: random masking, then conv-ReLU-conv) replaces
# the 1x1 adapter. alpha_mgd and lambda_mgd: mmrazor's MGD config;
# tools/compare_methods.py scales alpha_mgd by the rule of docs/results.md
# ("Which distillation method").
_base_ = [
    '../fgd_yolov5n_from_mnv2_trees.py', '../../_base_/distill_losses.py'
]

model = dict(
    distiller=dict(
        loss=dict(_delete_=True, **_base_.mgd_loss),
        loss_prefix='loss_mgd',
        connector=dict(_delete_=True, **_base_.mgd_connector),
        connector_channel_keys=('student_channels', 'teacher_channels'),
        mask=None))
