# MMRazor's PKD (Pearson-correlation feature distillation, Cao et al.,
# NeurIPS 2022) on the neck levels, 1x1 adapters and warm-up of
# ../fgd_yolov5n_from_mnv2_trees.py. loss_weight: mmrazor's PKD configs;
# tools/compare_methods.py scales it by the rule of docs/results.md
# ("Which distillation method").
_base_ = [
    '../fgd_yolov5n_from_mnv2_trees.py', '../../_base_/distill_losses.py'
]

model = dict(
    distiller=dict(
        loss=dict(_delete_=True, **_base_.pkd_loss),
        loss_prefix='loss_pkd',
        mask=None))
