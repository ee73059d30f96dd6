# Imitate P3 and P4 only (the teacher's P5 is fitted from 50 tiles' few
# large-scale cells).
_base_ = './fgd_yolov5n_from_mnv2_trees_warmup70.py'

model = dict(
    distiller=dict(
        student_layers=['neck.out_layers.0', 'neck.out_layers.1'],
        level_names=['p3', 'p4'],
        student_channels=[64, 128],
        teacher_channels=[128, 256]))
