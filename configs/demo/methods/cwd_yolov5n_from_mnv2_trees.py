# MMRazor's channel-wise distillation (CWD, Shu et al., ICCV 2021) on the
# neck levels, 1x1 adapters and warm-up of ../fgd_yolov5n_from_mnv2_trees.py.
# tau and loss_weight: mmrazor's CWD detection config (RetinaNet FPN);
# tools/compare_methods.py scales loss_weight by the rule of
# docs/results.md ("Which distillation method").
_base_ = [
    '../fgd_yolov5n_from_mnv2_trees.py', '../../_base_/distill_losses.py'
]

model = dict(
    distiller=dict(
        loss=dict(_delete_=True, **_base_.cwd_loss),
        loss_prefix='loss_cwd',
        mask=None))
