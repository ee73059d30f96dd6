"""Connectors (adaptation layers)."""
from .masked_conv_connector import MaskedConvConnector

__all__ = ['MaskedConvConnector']
