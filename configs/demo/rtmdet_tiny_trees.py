# Demo student of the second family (and its "trained alone" baseline):
# RTMDet-tiny (mmdet's rtmdet_tiny sizes), same data, pipeline and
# optimizer as ./rtmdet_s_trees.py, 30 epochs.
_base_ = './rtmdet_s_trees.py'

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs)
model = dict(
    backbone=dict(deepen_factor=0.167, widen_factor=0.375),
    neck=dict(in_channels=[96, 192, 384], out_channels=96,
              num_csp_blocks=1),
    bbox_head=dict(in_channels=96, feat_channels=96, exp_on_reg=False))
