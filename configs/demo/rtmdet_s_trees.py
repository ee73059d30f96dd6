# Demo teacher of the second family: mmdet's RTMDet-s on the NEON tree
# tiles (one class), from scratch on CPU, with the data, input size,
# optimizer and schedule of the YOLOv5 demo (./yolov5_s_trees.py):
# 320 px mosaic crops, AdamW lr 0.002 + 30-iteration warm-up + cosine,
# batch 8, 40 epochs, evaluation at native resolution.
_base_ = [
    'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py', './_base_/trees_data.py'
]

data_root = _base_.trees_data_root
img_scale = _base_.trees_img_scale
max_epochs = 40
val_interval = 10
base_lr = 0.002

model = dict(
    backbone=dict(init_cfg=None),  # from scratch: no model zoo here
    bbox_head=dict(num_classes=_base_.trees_num_classes),
    test_cfg=dict(score_thr=0.001, max_per_img=300))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='CachedMosaic', img_scale=img_scale, pad_val=114.0,
         max_cached_images=20),
    dict(type='RandomResize', scale=(640, 640), ratio_range=(0.75, 1.25),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=img_scale),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale_factor=1.0, keep_ratio=True),
    dict(type='Pad', size_divisor=32, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(
    _base_.trees_train_dataloader,
    dataset=dict(_base_.trees_train_dataloader.dataset,
                 pipeline=train_pipeline))
val_dataloader = dict(
    _base_.trees_val_dataloader,
    dataset=dict(_base_.trees_val_dataloader.dataset,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = _base_.trees_val_evaluator
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(lr=base_lr),
    paramwise_cfg=dict(
        norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=30),
    # No `end`: the runner ends it at train_cfg.max_epochs (T_max follows).
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.05, begin=0,
         by_epoch=True, convert_to_iter_based=True)
]
# EMA as in mmdet's config; no pipeline switch in a 40-epoch run.
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002,
         update_buffers=True, priority=49)
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=val_interval, max_keep_ckpts=1,
                    save_best=None))
train_cfg = dict(max_epochs=max_epochs, val_interval=val_interval,
                 dynamic_intervals=None)
env_cfg = dict(cudnn_benchmark=False)
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
