"""Analyses of a distillation setup that tools print (no training loop):
building a config's models (``models``), its masks on real images
(``masks``), gradients and probes (``gradients``), the teacher pre-flight
check (``teacher_check``) and the speed and memory benchmark
(``benchmark``)."""
from .masks import MaskSetup, feature_distance, load_coco_boxes, \
    mask_statistics, pad_to
from .models import (build_algorithm, build_detector,
                     build_distill_runner_parts, detection_loss,
                     imitation_loss)
from .teacher_check import check_teacher, format_report

__all__ = [
    'MaskSetup', 'feature_distance', 'load_coco_boxes', 'mask_statistics',
    'pad_to', 'build_algorithm', 'build_detector',
    'build_distill_runner_parts', 'detection_loss', 'imitation_loss',
    'check_teacher', 'format_report'
]
