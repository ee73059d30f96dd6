# Lever (a) of docs/results.md "Where the teacher's knowledge lives": the
# student's neck outputs imitate the teacher's MobileNetV2 stage outputs
# (strides 8 / 16 / 32: 32 / 96 / 320 channels), the features that COCO
# taught, instead of its neck (trained on the 50 tiles only).
_base_ = '../fgd_yolov5n_from_mnv2_trees.py'

model = dict(
    distiller=dict(
        teacher_layers=[
            'backbone.layer3', 'backbone.layer5',
            'backbone.layer7'
        ],
        teacher_channels=[32, 96, 320]))
