# The paper's 3x3 adaptation conv instead of the demo's 1x1 (more capacity
# to absorb the student-teacher mismatch instead of moving the student's
# own features; docs/results.md compares them).
_base_ = './fgd_yolov5n_from_mnv2_trees_warmup70.py'

model = dict(distiller=dict(connector=dict(kernel_size=3)))
