"""The demo's stages: teacher, student alone and distilled student on the
NEON trees, their evaluation and the report (``tools/run_demo.py``).

    python tools/run_demo.py [--full] [--seed 0] [--work-dir work_dirs/demo]

1. prepares the tiled COCO tree data (``tools/prepare_trees.py``) and,
   for the default teacher, the COCO-pretrained MobileNetV2 backbone
   (``tools/prepare_pretrained.py``: downloaded and converted once, cached);
2. fine-tunes the teacher (``configs/demo/yolov5_mnv2_trees.py``: that
   backbone with YOLOv5's PAFPN, projected to 128/256/512 channels, and
   head), trains the student alone (``configs/demo/yolov5_n_trees.py``)
   and the distilled student (``configs/demo/fgd_yolov5n_from_mnv2_trees.py``)
   with ``tools/train.py`` (mmengine's logger shows progress and ETA);
3. exports plain checkpoints (``tools/export_student.py``), evaluates all
   three on val with COCO mAP and writes ``report.md`` (tables and
   figures) and ``report.json`` into the work dir.

``--teacher scratch`` uses the control teacher instead: YOLOv5-s trained
from scratch on the same 50 tiles (``configs/demo/yolov5_s_trees.py``,
``configs/demo/fgd_yolov5n_from_s_trees.py``). A finished stage is reused
when its settings did not change (``--force`` retrains). ``--full`` runs
the longer schedule of docs/results.md. ``--family rtmdet`` runs RTMDet-s
(from scratch) -> RTMDet-tiny (mmdet, anchor-free) instead.
"""
import argparse
import json
import os
import os.path as osp
import time

# The repository: its configs/ and data/.
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')

__all__ = ['FAMILIES', 'STUDENT_EPOCHS', 'parse_args', 'main']


def _stages(teacher, baseline, distilled, description,
            teacher_epochs=(40, 150)):
    """Configs of one teacher's demo (teacher, student alone, distilled
    student, in configs/demo/) and the teacher's epochs (default run,
    --full)."""
    return dict(
        teacher=osp.join(DEMO, teacher),
        baseline=osp.join(DEMO, baseline),
        distilled=osp.join(DEMO, distilled),
        teacher_epochs=teacher_epochs,
        description=description)


# Detector families of the demo and their teachers (the first: default).
FAMILIES = dict(
    yolov5=dict(
        pretrained=_stages(
            'yolov5_mnv2_trees.py', 'yolov5_n_trees.py',
            'fgd_yolov5n_from_mnv2_trees.py',
            'COCO-pretrained MobileNetV2 1.0 backbone (TensorFlow '
            'ssd_mobilenet_v2_coco) with YOLOv5 PAFPN and head, fine-tuned '
            'on the train tiles'),
        scratch=_stages(
            'yolov5_s_trees.py', 'yolov5_n_trees.py',
            'fgd_yolov5n_from_s_trees.py',
            'YOLOv5-s trained from scratch on the train tiles (the control: '
            'it knows nothing the student cannot learn)')),
    rtmdet=dict(
        scratch=_stages(
            'rtmdet_s_trees.py', 'rtmdet_tiny_trees.py',
            'fgd_rtmdet_tiny_from_s_trees.py',
            'RTMDet-s trained from scratch on the train tiles')))
# Epochs of the students: (default run, --full)
STUDENT_EPOCHS = (30, 120)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run the trees demo')
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs',
                                                       'demo'))
    parser.add_argument('--full', action='store_true',
                        help='the longer schedule of docs/results.md')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--family', default='yolov5', choices=sorted(FAMILIES),
        help='detector family: YOLOv5-n <- s (default) or RTMDet-tiny <- s')
    parser.add_argument('--force', action='store_true',
                        help='retrain stages that are already done')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[],
        help='extra --cfg-options for the distilled stage (ablations)')
    parser.add_argument(
        '--distilled-config',
        help='distillation config of the distilled stage instead of the '
        'teacher\'s demo default (e.g. configs/demo/recipe/*.py)')
    parser.add_argument('--stages', nargs='+',
                        default=['teacher', 'baseline', 'distilled'],
                        choices=['teacher', 'baseline', 'distilled'])
    parser.add_argument(
        '--teacher', default=None, choices=['pretrained', 'scratch'],
        help='the teacher: COCO-pretrained (default for yolov5) or trained '
        'from scratch on the demo tiles (the control; rtmdet\'s only one)')
    parser.add_argument('--teacher-epochs', type=int,
                        help='override the teacher\'s epochs')
    parser.add_argument('--student-epochs', type=int,
                        help='override the students\' epochs')
    parser.add_argument(
        '--teacher-ckpt',
        help='use this teacher checkpoint instead of training one (then '
        '"teacher" is not trained even if listed in --stages)')
    args = parser.parse_args(argv)
    teachers = FAMILIES[args.family]
    args.teacher = args.teacher or next(iter(teachers))
    if args.teacher not in teachers:
        parser.error(f'--family {args.family} has the teachers '
                     f'{sorted(teachers)}')
    args.configs = dict(teachers[args.teacher])
    if args.distilled_config:
        args.configs['distilled'] = osp.abspath(args.distilled_config)
    return args


def stage_epochs(name, args):
    """Epochs of a stage under the command line's settings."""
    if name == 'teacher':
        return args.teacher_epochs or \
            args.configs['teacher_epochs'][1 if args.full else 0]
    return args.student_epochs or STUDENT_EPOCHS[1 if args.full else 0]


def log(msg):
    print(f'[demo] {msg}', flush=True)


def torch_threads():
    """Threads of the training processes (they inherit the environment)."""
    import torch
    return torch.get_num_threads()


def train_stage(name, args, extra=()):
    """Train one stage with tools/train.py unless an identical run is done
    (``fgd_mmrazor.experiments.runs.train_run``).

    Returns:
        tuple[str, float]: final checkpoint path and wall time (s).
    """
    from ..experiments.runs import epoch_options, train_run
    options = [
        f'{k}={v}' for k, v in epoch_options(stage_epochs(name, args)).items()
    ] + [f'randomness.seed={args.seed}', *extra]
    log(f'{name}: {args.configs[name]} --cfg-options {" ".join(options)}')
    done = train_run(args.configs[name], osp.join(args.work_dir, name),
                     options, force=args.force)
    log(f'{name}: {"reusing" if done["reused"] else "trained"} '
        f'{done["checkpoint"]} ({done["wall_s"]:.0f} s)')
    return done['checkpoint'], done['wall_s'], done['reused']


def mask_figure(out_png, data_root, student_config):
    """Imitation masks of one val image per level, over the image (the val
    tile with the most trees, padded like the test pipeline)."""
    import numpy as np
    import torch
    from PIL import Image

    from ..analysis.masks import MaskSetup, pad_to
    from .report import plot_masks
    setup = MaskSetup(student_config)
    images, boxes = setup.load_boxes(
        osp.join(data_root, 'val', 'annotations.json'))
    info = max(images.values(),
               key=lambda i: (len(boxes.get(i['id'], [])), -i['id']))
    b = np.asarray(boxes[info['id']], dtype=np.float32).reshape(-1, 4)
    padded = pad_to(np.asarray(Image.open(
        osp.join(data_root, 'val', 'images',
                 info['file_name'])).convert('RGB')))
    masks = setup.masks([torch.from_numpy(b)], padded.shape[:2])
    plot_masks(padded, b, [m[0] for m in masks], setup.strides, out_png,
               title=f'{info["file_name"]}: {len(b)} trees, '
               f'psi={setup.psi}, joint over levels')


def main(argv=None):
    """Run the demo with the command line ``argv`` (see
    :func:`parse_args`)."""
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    t0 = time.time()
    times = {}
    from .trees import prepare_trees
    data_root = osp.join(REPO, 'data', 'trees')
    manifest = prepare_trees(data_root)
    log(f'data: {json.dumps(manifest["counts"])} in {data_root}')
    if args.teacher == 'pretrained' and not args.teacher_ckpt and \
            'teacher' in args.stages:
        from .pretrained import prepare_mobilenetv2
        out = osp.join(REPO, 'data', 'pretrained', 'mobilenetv2_coco.pth')
        record = prepare_mobilenetv2(out)
        log(f'pretrained backbone: {out} '
            f'({"converted" if record["converted"] else "cached"})')
    times['data'] = time.time() - t0

    ckpts, walls, reused = {}, {}, []
    if args.teacher_ckpt:
        args.stages = [s for s in args.stages if s != 'teacher']
        ckpts['teacher'] = args.teacher_ckpt
    elif 'distilled' in args.stages and 'teacher' not in args.stages:
        raise SystemExit('--stages distilled needs the teacher stage or '
                         '--teacher-ckpt')
    for name in args.stages:
        extra = []
        if name == 'distilled':
            extra = [f'model.teacher_ckpt={ckpts["teacher"]}',
                     *args.cfg_options]
        ckpts[name], walls[name], was_reused = train_stage(name, args, extra)
        if was_reused:
            reused.append(name)
    times.update(walls)

    from ..analysis.models import build_detector
    from ..experiments.runs import evaluate_checkpoint
    from ..utils.export import export_student
    from .report import (demo_report, model_complexity, plot_losses,
                         plot_map, read_scalars)
    t_eval = time.time()
    exported, results, complexity = {}, {}, {}
    for name in args.stages:
        exported[name] = osp.join(args.work_dir, f'{name}.pth')
        export_student(ckpts[name], exported[name])
        plain_cfg = args.configs['teacher' if name == 'teacher' else
                                 'baseline']
        results[name] = evaluate_checkpoint(
            plain_cfg, exported[name], osp.join(args.work_dir, 'eval', name))
        complexity[name] = model_complexity(build_detector(plain_cfg))
        log(f'{name}: {results[name]}')

    figs = dict(
        map=osp.join(args.work_dir, 'map.png'),
        losses=osp.join(args.work_dir, 'losses.png'),
        masks=osp.join(args.work_dir, 'masks.png'))
    plot_map(results, figs['map'])
    if {'baseline', 'distilled'} <= set(args.stages):
        plot_losses(
            read_scalars(osp.join(args.work_dir, 'baseline')),
            read_scalars(osp.join(args.work_dir, 'distilled')),
            figs['losses'])
    mask_figure(figs['masks'], data_root, args.configs['baseline'])
    times['evaluation_and_report'] = time.time() - t_eval
    times['total'] = time.time() - t0

    settings = dict(
        family=args.family,
        teacher=args.teacher,
        teacher_description=args.configs['description'],
        schedule='full' if args.full else 'default',
        epochs={name: stage_epochs(name, args)
                for name in ('teacher', 'baseline', 'distilled')},
        distilled_cfg_options=list(args.cfg_options),
        distilled_config=osp.relpath(args.configs['distilled'], REPO),
        torch_threads=torch_threads(),
        teacher_ckpt_given=bool(args.teacher_ckpt),
        reused_stages=reused)
    report = demo_report(
        configs={k: args.configs[k]
                 for k in ('teacher', 'baseline', 'distilled')},
        checkpoints=exported,
        results=results,
        seed=args.seed,
        settings=settings,
        times=times,
        repo=REPO)
    with open(osp.join(args.work_dir, 'report.json'), 'w') as f:
        json.dump(report, f, indent=2)
    write_markdown(args, report, complexity, manifest)
    log(f'report: {osp.join(args.work_dir, "report.md")} '
        f'({times["total"]:.0f} s in all)')


def write_markdown(args, report, complexity, manifest):
    from .report import NOISE_MAP, comparison_sentence
    results, times = report['results'], report['times_s']
    rows = []
    for name in results:
        c = complexity[name]
        rows.append(
            f'| {name} | {results[name]["bbox_mAP"]:.4f} | '
            f'{results[name]["bbox_mAP_50"]:.4f} | {c["params"] / 1e6:.2f} M'
            f' | {c["flops"] / 1e9:.2f} G | {times.get(name, 0):.0f} s |')
    counts = manifest['counts']
    settings = report['settings']
    reused = settings.get('reused_stages', [])
    own = ', '.join(f'{k.replace("_", " ")} {v:.0f} s'
                    for k, v in times.items()
                    if k != 'total' and k not in reused)
    wall = f'This invocation: {times["total"]:.0f} s ({own}).'
    if reused:
        wall += (' Reused from an earlier invocation (their training time '
                 'then): ' + ', '.join(f'{k} {times[k]:.0f} s'
                                       for k in reused) + '.')
    text = f"""# Demo report: fine-grained feature imitation on NEON trees

Data: deepforest 2.1.0 NEON tiles, {counts['train']['images']} train
images ({counts['train']['boxes']} trees), {counts['val']['images']} val
tiles ({counts['val']['boxes']} trees), 320 px tiles at native resolution.
Seed {report['seed']}; epochs {settings['epochs']};
{settings['schedule']} schedule.

Teacher: {settings['teacher_description']}
(`{report['teacher_config']}`). Student: `{report['student_config']}`;
distilled: `{report['distilled_config']}`.

| model | bbox mAP | mAP50 | params | FLOPs (320x320) | train wall time |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

{comparison_sentence(report)}

{wall}

One seed decides little: a difference between the two students below
about {NOISE_MAP} mAP is within the spread of paired differences over
seeds on this data; docs/results.md compares them over paired seeds.

![mAP](map.png)

![losses](losses.png)

![masks](masks.png)
"""
    with open(osp.join(args.work_dir, 'report.md'), 'w') as f:
        f.write(text)
