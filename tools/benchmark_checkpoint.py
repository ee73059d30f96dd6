"""Checkpoint size and training memory of a distillation config.

Builds the algorithm of CONFIG, the EMA model its ``EMAHook`` would build
and its optimizer, runs one training step on a small synthetic batch and
writes the checkpoint the Runner would write (model state, EMA state,
optimizer state). Prints, and with ``--json`` saves:

* ``checkpoint_mb``: the size of that file, and of its parts;
* ``tensor_mb``: the distinct tensors held by the model, the EMA model and
  the optimizer after the step (what training keeps in memory besides
  activations);
* ``peak_rss_mb``: the process's peak resident memory, and
  ``rss_before_build_mb``, the same before anything was built;
* ``load_s``: the time to read that checkpoint back (best of 5) with
  the safe loader (``safe_load``, what every route uses) and with an
  unrestricted ``torch.load``, for comparison.

    python tools/benchmark_checkpoint.py \
        configs/demo/fgd_yolov5n_from_s_trees.py
    python tools/benchmark_checkpoint.py configs/fgd_yolov5s_from_l.py \
        --img 160 --json out.json

The teacher's weights are random unless ``--teacher-ckpt`` is given (the
sizes do not depend on them).
"""
import argparse
import io
import json
import resource
import sys
import time

import fgd_mmrazor  # noqa: F401  (compat shim + registration, first)
import torch
from mmengine.config import Config
from mmengine.hooks import EMAHook
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmrazor.registry import MODELS

from fgd_mmrazor.utils import safe_load


def _rss_mb() -> float:
    scale = 1 / 1024 if sys.platform != 'darwin' else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _tensor_mb(*objects) -> float:
    """MB of the distinct storages of every tensor reachable in the
    modules and (nested) state containers given."""
    seen, total = set(), 0

    def visit(obj):
        nonlocal total
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage() if hasattr(
                obj, 'untyped_storage') else obj.storage()  # torch < 2.0
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
        elif isinstance(obj, torch.nn.Module):
            for t in list(obj.parameters()) + list(obj.buffers()):
                visit(t)
        elif isinstance(obj, dict):
            for v in obj.values():
                visit(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                visit(v)

    for obj in objects:
        visit(obj)
    return total / 2**20


def _saved_mb(obj) -> float:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.tell() / 2**20


def _load_seconds(obj) -> dict:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()

    def best(load):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            load(io.BytesIO(data))
            times.append(time.perf_counter() - start)
        return round(min(times), 4)

    return dict(safe_load=best(safe_load), torch_load=best(
        lambda f: torch.load(f, map_location='cpu', weights_only=False)))


def _batch(size: int, batch: int):
    boxes = []
    for b in range(batch):
        for i, (x, y, s) in enumerate(((8, 8, 24), (40, 30, 40),
                                       (size // 2, size // 3, size // 3))):
            boxes.append([b, 0, x, y, min(x + s, size - 1),
                          min(y + s, size - 1)])
    return dict(
        inputs=torch.rand(batch, 3, size, size) * 255,
        data_samples=dict(
            bboxes_labels=torch.tensor(boxes, dtype=torch.float32),
            img_metas=[dict(batch_input_shape=(size, size))] * batch))


def measure(config: str, teacher_ckpt=None, img: int = 96,
            batch: int = 2) -> dict:
    rss_start = _rss_mb()
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmyolo'))
    model_cfg = cfg.model
    model_cfg.teacher_ckpt = teacher_ckpt
    model_cfg.teacher_ckpt_required = teacher_ckpt is not None
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.train()
    ema_hooks = [h for h in cfg.get('custom_hooks', [])
                 if h.get('type') == 'EMAHook']
    ema = None
    if ema_hooks:
        kwargs = {k: v for k, v in ema_hooks[0].items()
                  if k not in ('type', 'priority')}
        hook = EMAHook(**kwargs)
        hook.before_run(type('Runner', (), {'model': model})())
        ema = hook.ema_model
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train_step(_batch(img, batch), optim_wrapper)
    if ema is not None:
        ema.update_parameters(model)
    parts = dict(state_dict=model.state_dict(),
                 optimizer=optim_wrapper.state_dict())
    if ema is not None:
        parts['ema_state_dict'] = ema.state_dict()
    teacher_keys = sum('teacher.' in k for k in parts['state_dict']) + sum(
        'teacher.' in k for k in parts.get('ema_state_dict', {}))
    return dict(
        config=config,
        input=f'{batch}x3x{img}x{img}',
        torch=torch.__version__,
        checkpoint_mb=round(_saved_mb(parts), 2),
        checkpoint_parts_mb={k: round(_saved_mb(v), 2)
                             for k, v in parts.items()},
        teacher_keys_in_checkpoint=teacher_keys,
        student_params_m=round(
            sum(p.numel() for p in model.architecture.parameters()) / 1e6,
            3),
        teacher_params_m=round(
            sum(p.numel() for p in model.teacher.parameters()) / 1e6, 3),
        tensor_mb=round(_tensor_mb(model, model.teacher, ema,
                                   optim_wrapper.optimizer.state), 2),
        rss_before_build_mb=round(rss_start, 1),
        peak_rss_mb=round(_rss_mb(), 1),
        load_s=_load_seconds(parts))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--teacher-ckpt')
    parser.add_argument('--img', type=int, default=96)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--json', help='write the figures here')
    args = parser.parse_args()
    result = measure(args.config, args.teacher_ckpt, args.img, args.batch)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
