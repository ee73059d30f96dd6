# Lever (a), second choice: the teacher's expansion features that the COCO
# SSD's box predictor read: the 576-channel expansion of the first block
# of stage 6 (stride 16, before its stride-2 depthwise conv) and the
# final 1280-channel conv (stride 32); stride 8 keeps the stage output.
_base_ = '../fgd_yolov5n_from_mnv2_trees.py'

model = dict(
    distiller=dict(
        teacher_layers=[
            'backbone.layer3', 'backbone.layer6.0.expand_conv', 'backbone.conv2'
        ],
        teacher_channels=[32, 576, 1280]))
