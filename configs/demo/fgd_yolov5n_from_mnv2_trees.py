# The demo's distillation (tools/run_demo.py): the YOLOv5-n student of
# ./fgd_yolov5n_from_s_trees.py, with its recipe, imitates the
# COCO-pretrained ./yolov5_mnv2_trees.py (its projected neck outputs are
# 128 / 256 / 512 channels, as the YOLOv5-s teacher's).
#   python tools/train.py configs/demo/fgd_yolov5n_from_mnv2_trees.py \
#       --cfg-options model.teacher_ckpt=work_dirs/demo/teacher.pth
_base_ = './fgd_yolov5n_from_s_trees.py'

model = dict(teacher=dict(cfg_path='{{fileDirname}}/yolov5_mnv2_trees.py'))
