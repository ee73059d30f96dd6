"""What `tools/setup_env.sh` needs to build, cache and check mmcv's ops for
the installed torch (standard library and torch only: it runs before
anything else is installed).

    python tools/mmcv_wheel.py ops       # which ops to build: cuda or cpu
    python tools/mmcv_wheel.py key       # cache key of the mmcv wheel
    python tools/mmcv_wheel.py dir ROOT  # the cache folder for this torch
    python tools/mmcv_wheel.py find ROOT # the cached wheel for this torch
    python tools/mmcv_wheel.py arch      # TORCH_CUDA_ARCH_LIST to build for
    python tools/mmcv_wheel.py fix-src DIR   # patch an unpacked mmcv sdist
    python tools/mmcv_wheel.py check     # mmcv's ops work on this torch

mmcv's wheel is compiled against one torch (its C++ ABI) and, with
CUDA, one CUDA version and a list of GPU architectures; its file name says
none of these. The cache therefore keeps wheels in a folder named by
:func:`cache_key`, so that a wheel built with CPU ops only is never
installed where CUDA ops are wanted (NMS would then fail with
"nms_impl: implementation for device cuda:0 not found"), nor one built
for another torch (``undefined symbol`` at import).

Which ops (``FGD_MMCV_OPS``): ``auto`` (the default) builds CUDA ops when
torch is a CUDA build and a GPU is visible or ``TORCH_CUDA_ARCH_LIST`` is
set, else CPU ops (a CUDA build of torch on a machine without a GPU, e.g.
PyPI's torch on a CPU machine, says so); ``cuda`` requires them (and a GPU
or ``TORCH_CUDA_ARCH_LIST``); ``cpu`` builds CPU ops only.
"""
import argparse
import os
import os.path as osp
import re
import sys

# mmcv 2.x's CUDA helpers include this header of torch's retired THC
# library; newer torch wheels may not ship it. ATen's header has the same
# atomics.
THC_INCLUDE = '<THC/THCAtomics.cuh>'
ATEN_INCLUDE = '<ATen/cuda/Atomic.cuh>'


def is_cuda_torch(torch) -> bool:
    """A CUDA build of torch (whether or not a GPU is visible)."""
    return torch.version.cuda is not None


OPS_MODES = ('auto', 'cuda', 'cpu')


def _gpu_visible(torch) -> bool:
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def ops_mode(torch, env=os.environ) -> str:
    """'cuda' or 'cpu': the ops to build for this torch (see the module's
    docstring for ``FGD_MMCV_OPS``).

    Raises:
        RuntimeError: ``FGD_MMCV_OPS`` is unknown, or ``cuda`` with a CPU
            build of torch.
    """
    mode = env.get('FGD_MMCV_OPS', 'auto') or 'auto'
    if mode not in OPS_MODES:
        raise RuntimeError(f'FGD_MMCV_OPS must be one of {OPS_MODES}, got '
                           f'{mode!r}')
    if mode == 'cuda' and not is_cuda_torch(torch):
        raise RuntimeError('FGD_MMCV_OPS=cuda needs a CUDA build of torch; '
                           f'torch {torch.__version__} is a CPU build')
    if mode != 'auto':
        return mode
    if is_cuda_torch(torch) and (env.get('TORCH_CUDA_ARCH_LIST', '').strip()
                                 or _gpu_visible(torch)):
        return 'cuda'
    return 'cpu'


def arch_list(torch, env=os.environ) -> str:
    """The GPU architectures to compile for: ``TORCH_CUDA_ARCH_LIST`` if set,
    else those of the visible GPUs (e.g. '8.0;9.0').

    Raises:
        RuntimeError: no GPU is visible and the variable is not set (torch's
            own detection would fail deep inside the build).
    """
    given = env.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if given:
        return normalise_arch_list(given)
    if not _gpu_visible(torch):
        raise RuntimeError(
            'torch is a CUDA build but no GPU is visible, so the GPU '
            'architecture to compile mmcv for is unknown. Set '
            'TORCH_CUDA_ARCH_LIST, e.g. TORCH_CUDA_ARCH_LIST=9.0 for an '
            'H100/H200, 8.0 for an A100, 8.6 for an RTX 30xx/A10, 8.9 for '
            'an L4/RTX 40xx (several: "8.0;9.0").')
    caps = sorted({
        torch.cuda.get_device_capability(i)
        for i in range(torch.cuda.device_count())
    })
    return ';'.join(f'{major}.{minor}' for major, minor in caps)


def normalise_arch_list(archs: str) -> str:
    """'9.0 8.0;8.0' -> '8.0;9.0' (sorted, unique; '+PTX' kept)."""
    items = {a for a in re.split(r'[;\s,]+', archs.strip()) if a}
    return ';'.join(sorted(items))


def cache_key(torch, env=os.environ) -> str:
    """Name of the cache folder of the mmcv wheels that fit this torch.

    ``torch<version>-cpu`` for CPU ops; ``torch<version>-cu<CUDA>-
    sm<archs>`` for CUDA ops (the version includes the local tag, e.g.
    ``2.5.1+cu124``, so CPU ops built beside a CUDA torch have their own
    folder too).
    """
    version = torch.__version__.replace('+', '_')
    if ops_mode(torch, env) == 'cpu':
        return f'torch{version}-cpu'
    archs = arch_list(torch, env).replace('.', '').replace(';', '_')
    return f'torch{version}-cu{torch.version.cuda}-sm{archs}'


def cache_dir(root: str, torch, env=os.environ) -> str:
    """The folder under ``root`` that holds mmcv wheels for this torch."""
    return osp.join(root, cache_key(torch, env))


def find_wheel(root: str, torch, env=os.environ):
    """The cached mmcv wheel built for this torch (its folder is
    :func:`cache_key`'s), or None: wheels built for another torch, CUDA
    version or arch list, or for the CPU, are not looked at."""
    folder = cache_dir(root, torch, env)
    wheels = sorted(f for f in os.listdir(folder) if f.startswith('mmcv-')
                    and f.endswith('.whl')) if osp.isdir(folder) else []
    return osp.join(folder, wheels[-1]) if wheels else None


def fix_sources(src_dir: str, torch) -> list:
    """Replace the THC include in an unpacked mmcv sdist when this torch
    does not ship the header; return the patched files."""
    header = osp.join(osp.dirname(torch.__file__), 'include', 'THC',
                      'THCAtomics.cuh')
    if osp.exists(header):
        return []
    patched = []
    for root, _, files in os.walk(osp.join(src_dir, 'mmcv', 'ops', 'csrc')):
        for name in files:
            path = osp.join(root, name)
            if not name.endswith(('.h', '.hpp', '.cuh', '.cu', '.cpp')):
                continue
            with open(path, encoding='utf-8') as f:
                text = f.read()
            if THC_INCLUDE in text:
                with open(path, 'w', encoding='utf-8') as f:
                    f.write(text.replace(THC_INCLUDE, ATEN_INCLUDE))
                patched.append(path)
    return patched


def check(torch, env=os.environ) -> str:
    """Run mmcv's NMS where this torch computes: fail loudly if mmcv's ops
    do not fit it.

    Raises:
        RuntimeError: mmcv has no ops; it has CPU ops only where CUDA ops
            are wanted (a GPU is visible, or ``FGD_MMCV_OPS=cuda``); or its
            CUDA NMS fails on the GPU.
    """
    try:
        from mmcv import ops
    except ImportError as err:  # e.g. undefined symbol: another torch
        raise RuntimeError(f'mmcv.ops does not import ({err}): it was built '
                           'for another torch. Remove the venv and the '
                           'cached wheel and build again.') from err
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = ops.nms(boxes, scores, 0.5)
    if keep.tolist() != [0, 2]:
        raise RuntimeError(f'mmcv.ops.nms on the CPU kept {keep.tolist()}')
    if not is_cuda_torch(torch):
        return 'mmcv ops: CPU (torch is a CPU build)'
    compiled = ops.get_compiling_cuda_version()
    if compiled in (None, 'not available'):
        if _gpu_visible(torch) or ops_mode(torch, env) == 'cuda':
            raise RuntimeError(
                'mmcv was built without CUDA ops but CUDA ops are wanted '
                '(a GPU is visible, or FGD_MMCV_OPS=cuda): its NMS would '
                'fail on the GPU ("nms_impl: implementation for device '
                'cuda:0 not found"). Remove the venv and rebuild it '
                '(tools/setup_env.sh builds CUDA ops where a GPU is '
                'visible or TORCH_CUDA_ARCH_LIST is set).')
        return ('mmcv ops: CPU only (torch is a CUDA build, no GPU is '
                'visible; for GPUs set TORCH_CUDA_ARCH_LIST and rebuild)')
    if not _gpu_visible(torch):
        return (f'mmcv ops: CUDA {compiled} (compiled; no GPU visible to '
                'run them)')
    _, keep = ops.nms(boxes.cuda(), scores.cuda(), 0.5)
    if keep.tolist() != [0, 2]:
        raise RuntimeError(f'mmcv.ops.nms on the GPU kept {keep.tolist()}')
    return (f'mmcv ops: CUDA {compiled}, NMS ran on '
            f'{torch.cuda.get_device_name(0)}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=['ops', 'key', 'arch', 'find',
                                            'dir', 'fix-src', 'check'])
    parser.add_argument('path', nargs='?',
                        help='find/dir: the cache root; fix-src: the '
                        'unpacked sdist')
    args = parser.parse_args(argv)
    import torch
    try:
        if args.command == 'key':
            print(cache_key(torch))
        elif args.command == 'arch':
            print(arch_list(torch))
        elif args.command in ('find', 'dir'):
            if not args.path:
                parser.error(f'{args.command} needs the cache root')
            if args.command == 'dir':
                print(cache_dir(args.path, torch))
                return 0
            wheel = find_wheel(args.path, torch)
            if wheel is None:
                return 1
            print(wheel)
        elif args.command == 'ops':
            mode = ops_mode(torch)
            if mode == 'cpu' and is_cuda_torch(torch):
                print('[mmcv_wheel] torch is a CUDA build but no GPU is '
                      'visible and TORCH_CUDA_ARCH_LIST is not set: mmcv '
                      'gets CPU ops only (set TORCH_CUDA_ARCH_LIST for '
                      'GPUs)', file=sys.stderr)
            print(mode)
        elif args.command == 'fix-src':
            if not args.path:
                parser.error('fix-src needs the unpacked sdist folder')
            for path in fix_sources(args.path, torch):
                print(f'patched {THC_INCLUDE} -> {ATEN_INCLUDE}: {path}')
        else:
            print(check(torch))
    except RuntimeError as err:
        print(f'[mmcv_wheel] {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
