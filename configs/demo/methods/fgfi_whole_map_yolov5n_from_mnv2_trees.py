# FGFI without the imitation mask: the adapted student imitates the whole
# neck map of ../fgd_yolov5n_from_mnv2_trees.py (the paper's "whole feature
# map" ablation; the loss divides by 2 x the cells of each map). Compared
# by tools/compare_methods.py, which scales loss_weight by the rule of
# docs/results.md ("Which distillation method").
_base_ = '../fgd_yolov5n_from_mnv2_trees.py'

model = dict(distiller=dict(mask=None))
