# A 1x1 adaptation conv instead of the paper's 3x3: less capacity to absorb
# the student-teacher mismatch, so more of it has to move the student's own
# features.
_base_ = '../fgd_yolov5n_from_mnv2_trees.py'

model = dict(
    distiller=dict(
        connector=dict(
            type='ConvModuleConnector',
            kernel_size=1,
            padding=0,
            norm_cfg=None,
            act_cfg=None)))
