# Demo student (and its "trained alone" baseline): YOLOv5-n, same data,
# schedule and pipeline as the demo teacher (./yolov5_s_trees.py).
_base_ = './yolov5_s_trees.py'

deepen_factor = 0.33
widen_factor = 0.25
max_epochs = 30
train_cfg = dict(max_epochs=max_epochs)

model = dict(
    backbone=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
    neck=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
    bbox_head=dict(head_module=dict(widen_factor=widen_factor)))
