"""Necks (registered into mmyolo's registry)."""
from .projected_yolov5_pafpn import ProjectedYOLOv5PAFPN

__all__ = ['ProjectedYOLOv5PAFPN']
