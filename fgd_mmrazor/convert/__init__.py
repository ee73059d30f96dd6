"""Converters of pretrained weights from other frameworks."""
from .tf_mobilenetv2 import (bn_input_statistics, graph_bn_epsilon,
                             mobilenetv2_state_dict, read_graph_constants)

__all__ = [
    'bn_input_statistics', 'graph_bn_epsilon', 'mobilenetv2_state_dict',
    'read_graph_constants'
]
