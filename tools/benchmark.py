"""Benchmark the mask and the distillation step; prints a table.

    python tools/benchmark.py [--device cpu|cuda] [--batch N] [--img S] \
        [--json FILE] [--skip-step] [--step-procs N] [--profile]

The mask against the naive per-box loop, one training step of YOLOv5-s
alone, the YOLOv5-l teacher's forward and the distilled step of
``configs/fgd_yolov5s_from_l.py``, peak memory of each, and with
``--profile`` where the distilled step's time goes
(``fgd_mmrazor.analysis.benchmark``; docs/benchmarks.md). No figure is
asserted: this is a measurement tool, not a test.
"""
from fgd_mmrazor.analysis.benchmark import main

if __name__ == '__main__':
    main()
