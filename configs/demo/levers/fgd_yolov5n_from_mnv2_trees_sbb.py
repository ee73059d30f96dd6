# Lever (c): the student's backbone stage outputs (CSPDarknet stages 2-4,
# strides 8 / 16 / 32: 64 / 128 / 256 channels) imitate, instead of its
# neck outputs; the teacher's side stays its neck outputs (the default's).
_base_ = '../fgd_yolov5n_from_mnv2_trees.py'

model = dict(
    distiller=dict(
        student_layers=[
            'backbone.stage2', 'backbone.stage3', 'backbone.stage4'
        ],
        teacher_layers=[
            'neck.out_layers.0', 'neck.out_layers.1', 'neck.out_layers.2'
        ]))
