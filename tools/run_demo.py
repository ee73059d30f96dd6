"""The demo: teacher, student alone and distilled student on NEON trees.

    python tools/run_demo.py [--full] [--seed 0] [--work-dir work_dirs/demo] \
        [--teacher pretrained|scratch] [--family yolov5|rtmdet] \
        [--distilled-config CONFIG] [--cfg-options k=v ...] [--force]

Prepares the data (and the COCO-pretrained teacher backbone), trains the
three stages with ``tools/train.py`` (a finished stage with the same
settings is reused), evaluates them on val with COCO mAP and writes
``report.md`` and ``report.json`` into the work dir
(``fgd_mmrazor.demo.pipeline``; ``--help`` lists every option).
"""
from fgd_mmrazor.demo.pipeline import main

if __name__ == '__main__':
    main()
