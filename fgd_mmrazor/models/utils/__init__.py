"""Helpers shared by the models."""
from .anchors import anchors_from_model, find_prior_generator
from .ground_truth import gt_bboxes_from_data_samples

__all__ = [
    'anchors_from_model', 'find_prior_generator',
    'gt_bboxes_from_data_samples'
]
