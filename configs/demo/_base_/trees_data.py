# The demo's data, shared by its YOLOv5 (mmyolo) and RTMDet (mmdet)
# configs, which add their pipelines: the NEON tree tiles of deepforest 2.1.0
# (one class, COCO format), prepared by `python tools/prepare_trees.py`
# (run by the demo) into <repo>/data/trees/. Inputs are at native
# resolution (10 cm/px): 320 px training crops, evaluation of whole val
# tiles (only padded), so a tile and a whole NEON scene see trees at the
# same scale. The names carry a `trees_` prefix: the framework bases
# already define `data_root`, `train_dataloader`, ... (mmengine refuses a
# key defined by two bases).
trees_data_root = '{{fileDirname}}/../../../data/trees/'
trees_metainfo = dict(classes=('Tree', ), palette=[(34, 139, 34)])
trees_num_classes = 1
trees_img_scale = (320, 320)  # width, height of training crops

trees_dataset = dict(data_root=trees_data_root, metainfo=trees_metainfo)

trees_train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True, pin_memory=False,
    dataset=dict(
        trees_dataset,
        ann_file='train/annotations.json',
        data_prefix=dict(img='train/images/'),
        filter_cfg=dict(filter_empty_gt=False, min_size=4)))
trees_val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False, pin_memory=False,
    dataset=dict(trees_dataset, ann_file='val/annotations.json',
                 data_prefix=dict(img='val/images/')))
trees_val_evaluator = dict(ann_file=trees_data_root + 'val/annotations.json')
