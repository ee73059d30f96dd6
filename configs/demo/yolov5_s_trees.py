# Demo teacher: mmyolo's YOLOv5-s on the NEON tree tiles (one class,
# ./_base_/trees_data.py), from scratch, on CPU: 320 px training crops
# (mosaic + affine), evaluation without resizing (images only padded to a
# multiple of 32).
_base_ = [
    'mmyolo::yolov5/yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py',
    './_base_/trees_data.py'
]

data_root = _base_.trees_data_root
num_classes = _base_.trees_num_classes
img_scale = _base_.trees_img_scale
train_batch_size_per_gpu = _base_.trees_train_dataloader.batch_size
train_num_workers = _base_.trees_train_dataloader.num_workers

max_epochs = 40
val_interval = 10
# AdamW + cosine instead of mmyolo's SGD recipe: from scratch and with a few
# hundred iterations, SGD (lr 0.01) left YOLOv5-n at 0.006 mAP after 30
# epochs; AdamW reached 0.129 (docs/results.md).
base_lr = 0.002

# YOLOv5 scales the objectness loss with the input area (640 px reference).
loss_obj_weight = 1.0 * (img_scale[0] / 640)**2

model = dict(
    bbox_head=dict(
        head_module=dict(num_classes=num_classes),
        loss_cls=dict(loss_weight=0.5 * (num_classes / 80)),
        loss_obj=dict(loss_weight=loss_obj_weight)),
    test_cfg=dict(score_thr=0.001, max_per_img=300))

pre_transform = _base_.pre_transform
train_pipeline = [
    *pre_transform,
    dict(
        type='Mosaic',
        img_scale=img_scale,
        pad_val=114.0,
        pre_transform=pre_transform),
    dict(
        type='YOLOv5RandomAffine',
        max_rotate_degree=0.0,
        max_shear_degree=0.0,
        scaling_ratio_range=(0.75, 1.25),
        border=(-img_scale[0] // 2, -img_scale[1] // 2),
        border_val=(114, 114, 114)),
    dict(type='YOLOv5HSVRandomAug'),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'flip',
                   'flip_direction'))
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='mmdet.Resize', scale_factor=1.0, keep_ratio=True),
    dict(type='mmdet.Pad', size_divisor=32, pad_val=dict(img=114)),
    dict(type='LoadAnnotations', with_bbox=True, _scope_='mmdet'),
    dict(
        type='mmdet.PackDetInputs',
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
                 batch_shapes_cfg=None,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = _base_.trees_val_evaluator
test_evaluator = val_evaluator

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=30),
    # No `end`: the runner ends it at train_cfg.max_epochs (and T_max is
    # end - begin), so a config or --cfg-options changes the epochs only.
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.05, begin=0,
         by_epoch=True, convert_to_iter_based=True)
]
default_hooks = dict(
    logger=dict(interval=10),
    param_scheduler=dict(_delete_=True, type='ParamSchedulerHook'),
    checkpoint=dict(interval=val_interval, max_keep_ckpts=1,
                    save_best=None))
train_cfg = dict(max_epochs=max_epochs, val_interval=val_interval)
env_cfg = dict(cudnn_benchmark=False)
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
