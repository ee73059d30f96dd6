"""The speed and memory benchmark of ``tools/benchmark.py``.

    python tools/benchmark.py [--device cpu|cuda] [--batch N] [--img S] \
        [--json FILE] [--skip-step] [--step-procs N]

Measures, side by side, with medians of several runs after warm-up:

* the mask: ``imitation_masks`` against the naive per-box loop
  (``fgd_mmrazor/ops/reference_loop.py``) at B=16, a 640 px input, levels
  80, 40, 20 with the anchors and strides that the mask recorder of
  ``configs/fgd_yolov5s_from_l.py`` reads from its YOLOv5-s student and 20
  boxes per image (same masks checked), and its time for 1 to 500 boxes
  per image and 320 to 1280 px;
* one training step of YOLOv5-s alone, a no-grad eval forward of the
  YOLOv5-l teacher (backbone + neck) and one step of the distilled pair
  (``configs/fgd_yolov5s_from_l.py``), at ``--batch`` and ``--img``, with
  ``--step-boxes`` boxes per image drawn ``uniform`` (8 px to 0.4 x the
  input) or ``coco`` (COCO's mix: 41% small, 34% medium, 25% large
  objects); the imitation mask's share of the cells is printed with it;
* with ``--step-procs N``, the step timings in N fresh processes, one
  after the other, as the median over them (per-process figures kept);
* peak memory of each, in a fresh process per mode that builds only that
  mode's models (CUDA: its ``max_memory_allocated``; CPU: its peak RSS,
  minus that of a process that only imports);
* on CUDA, the host-device synchronisations of a student step and of a
  distilled step, with the lines that wait (``sync_sites``).

On CUDA the times are measured with CUDA events on the stream, and
``--profile`` reports the GPU kernel time of each part (on CPU: CPU time).

No figure is asserted: this is a measurement tool, not a test.
"""
import argparse
import functools
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

import torch

from .models import build_algorithm, build_detector

# The repository (configs/ and the package's parent, for the child
# processes' PYTHONPATH).
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'fgd_yolov5s_from_l.py')

__all__ = ['parse_args', 'main', 'bench_mask', 'bench_step', 'profile_step']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='fgd_mmrazor benchmark')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--img', type=int, default=320)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--step-boxes', type=int, default=20,
                        help='boxes per image in the step benchmark')
    parser.add_argument('--box-sizes', default='uniform',
                        choices=['uniform', 'coco'],
                        help='box size distribution of the step benchmark')
    parser.add_argument('--json', help='write the figures to this file')
    parser.add_argument('--skip-step', action='store_true',
                        help='mask figures only')
    parser.add_argument('--step-procs', type=int, default=1,
                        help='time the step in this many fresh processes '
                        'and report medians over them (the step floor '
                        'varies between processes on a shared machine)')
    parser.add_argument('--profile', action='store_true',
                        help='also profile one distilled step (ms per '
                        'part: teacher, student, mask, adapters, loss, '
                        'backward)')
    parser.add_argument('--mode', help=argparse.SUPPRESS)  # child process
    return parser.parse_args(argv)


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def timed(fn, device):
    """Seconds that one call of ``fn`` takes: on CUDA between two events on
    the stream (the GPU's time from the first queued kernel to the last,
    the host's waits included), on CPU by the wall clock. Returns
    ``(seconds, process CPU seconds)``."""
    sync(device)
    c0 = time.process_time()
    if device == 'cuda':
        start, end = (torch.cuda.Event(enable_timing=True)
                      for _ in range(2))
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3, time.process_time() - c0
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def interleaved_medians(fns, device, repeats, warmup=1, cpu_times=None):
    """Median time of each function, timed in rounds (one call of each per
    round), so that a slow phase of a shared machine hits all alike.

    If ``cpu_times`` is a dict, it receives the median CPU time of this
    process (all threads) per function: on a shared machine it does not
    count the time other processes hold the cores.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, proc = timed(fn, device)
            times[name].append(wall)
            cpu[name].append(proc)
    if cpu_times is not None:
        cpu_times.update(
            {name: statistics.median(ts) for name, ts in cpu.items()})
    return {name: statistics.median(ts) for name, ts in times.items()}


def median_time(fn, device, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    return statistics.median(
        timed(fn, device)[0] for _ in range(repeats))


def sync_sites(fn) -> list:
    """The Python lines (``file:line``) that made the host wait for the
    device during one call of ``fn`` on CUDA, one entry per wait, as
    torch's sync debug mode reports them (each ``.item()``, ``nonzero``,
    copy to the host or blocking copy to the device)."""
    import warnings
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return [f'{osp.relpath(w.filename)}:{w.lineno}' for w in caught
            if 'synchroniz' in str(w.message)]


def random_boxes(num_imgs, num_boxes, img, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    boxes = []
    for _ in range(num_imgs):
        wh = torch.rand(num_boxes, 2, generator=g) * img * 0.4 + 8
        xy = torch.rand(num_boxes, 2, generator=g) * (img - wh)
        boxes.append(torch.cat([xy, xy + wh], 1).to(device))
    return boxes


def coco_like_boxes(num_imgs, num_boxes, img, device, seed=0):
    """Boxes with COCO's size mix (41% small: sqrt(area) < 32 px, 34%
    medium: 32-96 px, 25% large), sizes relative to a 640 px input, aspect
    ratios from 1:2 to 2:1, inside the image."""
    g = torch.Generator().manual_seed(seed)
    scale = img / 640
    boxes = []
    for _ in range(num_imgs):
        kind = torch.multinomial(torch.tensor([0.41, 0.34, 0.25]),
                                 num_boxes, replacement=True, generator=g)
        lo = torch.tensor([8., 32., 96.])[kind]
        hi = torch.tensor([32., 96., 400.])[kind]
        side = (lo + (hi - lo) * torch.rand(num_boxes, generator=g)) * scale
        ratio = torch.exp((torch.rand(num_boxes, generator=g) * 2 - 1) *
                          0.6931)
        wh = torch.stack([side * ratio.sqrt(), side / ratio.sqrt()], 1)
        wh = wh.clamp(max=img - 1)
        xy = torch.rand(num_boxes, 2, generator=g) * (img - wh)
        boxes.append(torch.cat([xy, xy + wh], 1).to(device))
    return boxes


def mask_settings(config=CONFIG):
    """Anchors (w, h) per level and strides of the config's mask recorder,
    as it reads them from the student (its prior generator)."""
    rec = build_algorithm(config).distiller.mask_recorder
    return [a.float() for a in rec.base_anchors], list(rec.strides)


def bench_mask(device, repeats, config=CONFIG):
    from ..ops import featmap_sizes_for, imitation_masks
    from ..ops.reference_loop import loop_imitation_masks
    anchors, strides = mask_settings(config)
    anchors = [a.to(device) for a in anchors]
    cpu_anchors = [a.cpu() for a in anchors]
    img = 640
    sizes = featmap_sizes_for((img, img), strides)
    boxes = random_boxes(16, 20, img, device)
    ours = imitation_masks(boxes, sizes, strides, anchors, joint=False)
    loop = loop_imitation_masks([b.cpu() for b in boxes], sizes, strides,
                                cpu_anchors)
    same = all(torch.equal(a.cpu(), b) for a, b in zip(ours, loop))
    # Interleaved rounds (one loop call, then four of each of ours), so a
    # slow phase of a shared machine slows both alike.
    times = interleaved_medians(
        dict(
            loop=lambda: loop_imitation_masks(
                [b.cpu() for b in boxes], sizes, strides, cpu_anchors),
            ours=lambda: [
                imitation_masks(boxes, sizes, strides, anchors, joint=False)
                for _ in range(4)
            ],
            joint=lambda: [
                imitation_masks(boxes, sizes, strides, anchors)
                for _ in range(4)
            ]), device, max(5, repeats))
    t_loop, t_ours, t_joint = (times['loop'], times['ours'] / 4,
                               times['joint'] / 4)
    by_boxes = {}
    for n in (1, 10, 50, 100, 200, 500):
        bx = random_boxes(16, n, img, device, seed=n)
        by_boxes[str(n)] = 1e3 * median_time(
            lambda: imitation_masks(bx, sizes, strides, anchors), device,
            repeats * 2)
    by_size = {}
    for size in (320, 640, 1280):
        bx = random_boxes(16, 20, size, device, seed=size)
        sz = featmap_sizes_for((size, size), strides)
        by_size[str(size)] = 1e3 * median_time(
            lambda: imitation_masks(bx, sz, strides, anchors), device,
            repeats * 2)
    return dict(
        mask_same_as_loop=same,
        mask_loop_ms=1e3 * t_loop,
        mask_ms=1e3 * t_ours,
        mask_joint_ms=1e3 * t_joint,
        mask_speedup_vs_loop=t_loop / t_ours,
        mask_ms_by_boxes=by_boxes,
        mask_ms_by_img=by_size)


def build_models(device):
    """The distillation algorithm of configs/fgd_yolov5s_from_l.py (an
    untrained teacher: the timings do not depend on its weights)."""
    return build_algorithm(CONFIG, device=device)


def make_batch(args):
    batch, img, device = args.batch, args.img, args.device
    inputs = torch.rand(batch, 3, img, img, device=device)
    draw = coco_like_boxes if args.box_sizes == 'coco' else random_boxes
    boxes = draw(batch, args.step_boxes, img, device, seed=1)
    rows = [
        torch.cat([torch.full((len(b), 1), i, device=device),
                   torch.zeros(len(b), 1, device=device), b], 1)
        for i, b in enumerate(boxes)
    ]
    labels = torch.cat(rows)

    def samples():  # the YOLOv5 head edits bboxes_labels in place
        return dict(
            bboxes_labels=labels.clone(),
            img_metas=[dict(batch_input_shape=(img, img))] * batch)

    return inputs, samples


def step_fns(algo, inputs, samples):
    params = [p for p in algo.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

    def backward(losses):
        loss, _ = algo.parse_losses(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def student():
        backward(algo.student.loss(inputs, samples()))

    @torch.no_grad()
    def teacher():
        algo.teacher.extract_feat(inputs)

    def distill():
        backward(algo.loss(inputs, samples()))

    def back_to_back():  # the floor, run as one step: teacher, then student
        teacher()
        student()

    return dict(student=student, teacher=teacher, distill=distill,
                back_to_back=back_to_back)


def child(args):
    """Run one mode in a fresh process that builds only what the mode
    needs (student, teacher, or both and the adapters); print its peak RSS
    (MB)."""
    import fgd_mmrazor  # noqa: F401
    if args.mode == 'timing':
        print(json.dumps(step_timings(args)[0]))
        return
    if args.mode != 'imports':
        from mmengine.config import Config
        from mmengine.hub import get_model
        cfg = Config.fromfile(CONFIG)
        inputs, samples = make_batch(args)
        if args.mode == 'distill':
            fn = step_fns(build_models(args.device), inputs,
                          samples)['distill']
        elif args.mode == 'student':
            # the config's student alone (architecture = the base model)
            student_cfg = Config(dict(model=cfg.model.architecture,
                                      default_scope=cfg.default_scope))
            model = build_detector(student_cfg, args.device).train()
            params = [p for p in model.parameters()]
            opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

            def fn():
                loss, _ = model.parse_losses(model.loss(inputs, samples()))
                opt.zero_grad()
                loss.backward()
                opt.step()
        else:
            model = get_model(cfg.model.teacher.cfg_path).to(
                args.device).eval()

            @torch.no_grad()
            def fn():
                model.extract_feat(inputs)

        for _ in range(2):
            fn()
    if args.device == 'cuda':
        # A fresh process: everything on the GPU is this mode's own.
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = _peak_rss_mb()
    print(json.dumps(dict(peak_mb=peak)))


def _peak_rss_mb():
    """This process's RSS high-water mark. ``ru_maxrss`` survives exec (it
    would report the parent's peak), ``VmHWM`` belongs to this image."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory(args, mode):
    """Peak memory (MB) of a fresh process running ``mode``: its peak RSS
    on CPU, its ``max_memory_allocated`` on CUDA."""
    return _run_child(args, mode)['peak_mb']


def mask_coverage(algo, fns):
    """Share of the cells in the step's imitation mask (the sparse
    adapters' work follows it), per level and overall."""
    fns['distill']()
    masks = [algo.distiller.mask(name) for name in algo.distiller.level_names]
    return dict(
        step_mask_coverage=sum(int(m.sum()) for m in masks) /
        sum(m.numel() for m in masks),
        step_mask_coverage_by_level={
            name: float(m.float().mean())
            for name, m in zip(algo.distiller.level_names, masks)
        })


def step_arithmetic(algo, inputs, samples):
    """The step's convolution arithmetic (GFLOP): student forward, teacher
    forward, the adapters at the masked cells of the last distilled step
    (the one ``mask_coverage`` ran), and the adapters' forward + backward
    as a share of the floor's (student forward + backward, taken as 3x its
    forward, plus the teacher forward). A lower bound on the step overhead
    that no implementation of the 3x3 adapters avoids; it does not depend
    on the machine."""
    from ..utils import conv_flops, masked_conv_flops
    distiller = algo.distiller
    adapters = 0
    for name in distiller.level_names:
        adapter = distiller.adapter(name)
        if not getattr(adapter, 'supports_cells', False) or \
                not distiller.sparse_adapters:
            raise ValueError(f'{name}: the benchmark counts adapters '
                             'evaluated at the masked cells only')
        adapters += masked_conv_flops(int(distiller.mask(name).sum()),
                                      adapter.conv_module.conv)
    student = conv_flops(algo.student,
                         lambda: algo.student.loss(inputs, samples()))
    with torch.no_grad():
        teacher = conv_flops(algo.teacher,
                             lambda: algo.teacher.extract_feat(inputs))
    return dict(
        step_gflop={
            'student_fwd': student / 1e9,
            'teacher_fwd': teacher / 1e9,
            'adapters_fwd': adapters / 1e9
        },
        adapter_flop_share=3 * adapters / (3 * student + teacher))


def step_timings(args):
    """Median step times of one process (interleaved rounds) and the
    overheads computed from them."""
    device = args.device
    algo = build_models(device)
    inputs, samples = make_batch(args)
    fns = step_fns(algo, inputs, samples)
    coverage = mask_coverage(algo, fns)
    coverage.update(step_arithmetic(algo, inputs, samples))
    cpu = {}
    res = interleaved_medians(
        {f'step_{name}_s': fns[name]
         for name in ('student', 'teacher', 'distill', 'back_to_back')},
        device, args.repeats, cpu_times=cpu)
    res['step_teacher_fwd_s'] = res.pop('step_teacher_s')
    if device == 'cpu':
        res['distill_overhead_cpu_time'] = cpu['step_distill_s'] / (
            cpu['step_student_s'] + cpu['step_teacher_s']) - 1
        res['distill_overhead_vs_back_to_back_cpu_time'] = cpu[
            'step_distill_s'] / cpu['step_back_to_back_s'] - 1
    res['step_boxes_per_img'] = f'{args.step_boxes} ({args.box_sizes})'
    res.update(coverage)
    if device == 'cuda':
        res.update(step_syncs(fns))
    # The same floor measured as one call (teacher forward, then a student
    # step): what sharing one process's caches and allocator between the
    # two networks costs with no distillation at all.
    res['step_student_plus_teacher_s'] = res.pop('step_back_to_back_s')
    _add_overheads(res)
    return res, fns


def step_syncs(fns):
    """Host-device synchronisations of one student step alone and of one
    distilled step; their difference is the distillation's, and the lines
    that wait only in the distilled step are listed."""
    import collections
    student, distill = (sync_sites(fns[name])
                        for name in ('student', 'distill'))
    student, distill = (collections.Counter(s) for s in (student, distill))
    return dict(syncs_student_step=sum(student.values()),
                syncs_distill_step=sum(distill.values()),
                syncs_distillation=sum(distill.values()) -
                sum(student.values()),
                syncs_distillation_sites=dict(distill - student),
                syncs_student_only_sites=dict(student - distill))


def _add_overheads(res):
    """The distilled step's overheads over both floors, from the times in
    ``res``."""
    res['distill_overhead'] = res['step_distill_s'] / (
        res['step_student_s'] + res['step_teacher_fwd_s']) - 1
    res['distill_overhead_vs_back_to_back'] = res['step_distill_s'] / res[
        'step_student_plus_teacher_s'] - 1


def _child_cmd(args, mode):
    return [
        sys.executable, '-m', 'fgd_mmrazor.analysis.benchmark', '--mode',
        mode, '--device', args.device, '--batch', str(args.batch), '--img',
        str(args.img), '--repeats', str(args.repeats), '--step-boxes',
        str(args.step_boxes),
        '--box-sizes', args.box_sizes
    ]


def _run_child(args, mode):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    out = subprocess.run(_child_cmd(args, mode), check=True,
                         capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_step(args):
    device = args.device
    fns = None
    if args.step_procs <= 1:
        res, fns = step_timings(args)
    else:
        # One fresh process per run, one after the other; each reports its
        # own medians. The times are the medians over the processes and
        # the overheads are recomputed from them (their definitions hold);
        # each process's own overheads are kept beside them.
        runs = [_run_child(args, 'timing') for _ in range(args.step_procs)]
        res = {
            k: (statistics.median(r[k] for r in runs) if isinstance(
                v, float) else v)
            for k, v in runs[0].items()
        }
        _add_overheads(res)
        res['step_procs'] = args.step_procs
        res['distill_overhead_by_process'] = {
            str(i): r['distill_overhead'] for i, r in enumerate(runs)
        }
        res['distill_overhead_vs_back_to_back_by_process'] = {
            str(i): r['distill_overhead_vs_back_to_back']
            for i, r in enumerate(runs)
        }
    del fns  # the peaks are those of fresh child processes
    # CPU: an import-only process's RSS is subtracted; CUDA: it is 0 (a
    # process allocates nothing on the GPU until it builds a model).
    base = peak_memory(args, 'imports')
    peaks = {m: peak_memory(args, m) for m in ('student', 'teacher',
                                               'distill')}
    res['peak_mem_student_mb'] = peaks['student'] - base
    res['peak_mem_teacher_fwd_mb'] = peaks['teacher'] - base
    res['peak_mem_distill_mb'] = peaks['distill'] - base
    floor = res['peak_mem_student_mb'] + res['peak_mem_teacher_fwd_mb']
    res['peak_mem_overhead'] = (res['peak_mem_distill_mb'] / floor - 1
                                if floor > 0 else float('nan'))
    res['peak_rss_raw_mb'] = dict(imports=base, **peaks)
    res['peak_mem_method'] = (
        'torch.cuda.max_memory_allocated of a fresh process per mode '
        '(building only that mode\'s models)' if device == 'cuda' else
        'peak RSS of a fresh process per mode (building only that mode\'s '
        'models), minus an import-only process')
    return res


def _scoped(obj, attr, label):
    """Wrap ``obj.attr`` (a bound method or module call) in a profiler
    scope named ``label``."""
    from torch.profiler import record_function
    fn = getattr(obj, attr)

    # wraps: the distiller reads the loss's signature (num_pos)
    @functools.wraps(fn)
    def wrapped(*a, **kw):
        with record_function(label):
            return fn(*a, **kw)

    setattr(obj, attr, wrapped)


def profile_step(args, steps=3):
    """Where the time of one distilled step goes: inclusive time of each
    part (torch.profiler scopes around the algorithm's pieces), CPU time
    on CPU, the time of the GPU kernels each part launched on CUDA (its
    CPU time there is only the launching)."""
    from torch.profiler import ProfilerActivity, profile, record_function
    algo = build_models(args.device)
    inputs, samples = make_batch(args)
    fns = step_fns(algo, inputs, samples)
    fns['distill']()  # warm-up
    rec = algo.distiller.mask_recorder
    _scoped(algo.teacher, 'extract_feat', 'teacher forward (no_grad)')
    _scoped(algo.student, 'loss', 'student forward + detection loss')
    _scoped(rec, 'compute_masks', 'imitation mask')
    # the sparse path calls forward_cells (MaskedConvConnector and
    # ImitationMaskLoss), the dense one forward
    for label, modules in (('adapters', algo.distiller.connectors),
                           ('imitation loss', algo.distiller.distill_losses)):
        for module in modules.values():
            for attr in ('forward', 'forward_cells'):
                if hasattr(module, attr):
                    _scoped(module, attr, label)
    _scoped(algo.distiller, 'compute_distill_losses',
            'distiller (adapters + mask + losses)')
    opt_step = fns['distill']
    activities = [ProfilerActivity.CPU]
    if args.device == 'cuda':
        activities.append(ProfilerActivity.CUDA)

    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function('distilled step'):
                opt_step()
            sync(args.device)
            with record_function('student step (alone)'):
                fns['student']()
            sync(args.device)
    out = {}
    for evt in prof.key_averages():
        if evt.key in ('distilled step', 'student step (alone)',
                       'teacher forward (no_grad)',
                       'student forward + detection loss', 'imitation mask',
                       'adapters', 'imitation loss',
                       'distiller (adapters + mask + losses)'):
            out[evt.key] = _event_time_us(evt, args.device) / 1e3 / steps
    total = out.get('distilled step', float('nan'))
    forward = sum(out.get(k, 0) for k in (
        'teacher forward (no_grad)', 'student forward + detection loss',
        'distiller (adapters + mask + losses)'))
    out['backward + optimizer (rest of the step)'] = total - forward
    # The student-alone step's forward is inside its own scope: the same
    # wrapped student.loss, counted once per distilled and once per
    # student step above, so subtract the distilled step's share.
    student_fwd = out.get('student forward + detection loss', 0) / 2
    out['student forward + detection loss'] = student_fwd
    out['student alone: backward + optimizer'] = out.get(
        'student step (alone)', float('nan')) - student_fwd
    out['backward + optimizer (rest of the step)'] = total - (
        forward - student_fwd)
    return {
        'profile_ms_per_step': out,
        'profile_clock': 'cuda kernels' if args.device == 'cuda' else 'cpu'
    }


def _event_time_us(evt, device):
    """An averaged profiler event's inclusive time (us): its kernels' on
    CUDA, its CPU time on CPU."""
    if device != 'cuda':
        return evt.cpu_time_total
    total = getattr(evt, 'device_time_total', None)
    return evt.cuda_time_total if total is None else total


def main(argv=None):
    args = parse_args(argv)
    if args.mode:
        return child(args)
    import fgd_mmrazor  # noqa: F401
    res = dict(
        device=args.device,
        batch=args.batch,
        img=args.img,
        torch=torch.__version__,
        threads=torch.get_num_threads())
    res.update(bench_mask(args.device, args.repeats))
    if not args.skip_step:
        res.update(bench_step(args))
    if args.profile:
        res.update(profile_step(args))
    width = max(len(k) for k in res)
    for k, v in res.items():
        if isinstance(v, float):
            v = f'{v:.4g}'
        elif isinstance(v, dict):
            v = ', '.join(f'{kk}: {vv:.3g}' for kk, vv in v.items())
        print(f'{k:<{width}}  {v}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=2)


if __name__ == '__main__':
    main()
