# Lever (b): the demo teacher with its whole COCO-pretrained MobileNetV2
# frozen (every stage and its BatchNorm statistics), so that the features
# of its backbone are exactly COCO's; the neck and head are fine-tuned as
# in ./yolov5_mnv2_trees.py. Chosen or not by its own val mAP.
_base_ = './yolov5_mnv2_trees.py'

model = dict(backbone=dict(frozen_stages=7, norm_eval=True))
