#!/usr/bin/env bash
# Create (once) and activate the pinned environment of fgd_mmrazor.
#
# Usage:  source tools/setup_env.sh        (or: bash tools/setup_env.sh)
#
# The environment is a virtualenv outside the checkout, keyed by the hash of
# requirements/*.txt (and FGD_TORCH), so a fresh clone reuses it and a change
# of pins builds a new one. mmcv has no prebuilt wheel with ops on PyPI: it is
# built once from its sdist (MMCV_WITH_OPS=1, about 10 min on 2 cores; with
# CUDA ops for the torch's CUDA and the GPU's architecture when torch is a
# CUDA build) and the wheel is cached under a key of torch version, CUDA
# version and architectures (tools/mmcv_wheel.py), then checked by running
# mmcv's NMS (on the GPU where there is one).
#
# Variables:
#   FGD_STACK   "modern" (default: requirements/*.txt, torch 2.13) or
#               "reference" (requirements/reference/*.txt: torch 1.13.1,
#               mmcv 2.0.1, official mmyolo 0.6.0; see docs/install.md)
#   FGD_TORCH   which build of the pinned torch: unset (default) takes it
#               from the configured index (PyPI: a CUDA build on Linux x86-64),
#               "cpu" or a CUDA tag such as "cu126", "cu128" from PyTorch's
#               own index (https://download.pytorch.org/whl/<tag>)
#   FGD_CACHE   cache root (default: ~/.cache/fgd_mmrazor)
#   FGD_VENV    virtualenv path (default: $FGD_CACHE/venv-<hash>)
#   FGD_PYTHON  interpreter used to create the venv (default: python3)
#   TORCH_CUDA_ARCH_LIST  GPU architectures of the CUDA build (default: the
#               visible GPUs'), e.g. "9.0"
#   FGD_MMCV_OPS  "auto" (default: CUDA ops for a CUDA torch where a GPU is
#               visible or TORCH_CUDA_ARCH_LIST is set, else CPU ops),
#               "cuda" or "cpu"
#   MAX_JOBS    parallel compile jobs of mmcv's build (default: nproc)
set -eo pipefail

_fgd_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${FGD_STACK:-modern}" in
    modern) _fgd_req="$_fgd_root/requirements"; _fgd_prefix=venv ;;
    reference) _fgd_req="$_fgd_root/requirements/reference"
               _fgd_prefix=venv-reference ;;
    *) echo "[setup_env] FGD_STACK must be modern or reference" >&2
       return 1 2>/dev/null || exit 1 ;;
esac
FGD_CACHE="${FGD_CACHE:-$HOME/.cache/fgd_mmrazor}"
_fgd_hash="$( (cat "$_fgd_req"/*.txt; [ -z "${FGD_TORCH:-}" ] ||
               echo "FGD_TORCH=$FGD_TORCH") | sha1sum | cut -c1-10)"
FGD_VENV="${FGD_VENV:-$FGD_CACHE/$_fgd_prefix-$_fgd_hash}"
_fgd_stamp="$FGD_VENV/.fgd_ready"

if [ ! -f "$_fgd_stamp" ]; then
    echo "[setup_env] building environment in $FGD_VENV" >&2
    _t0=$(date +%s)
    mkdir -p "$FGD_CACHE/wheels"
    "${FGD_PYTHON:-python3}" -m venv "$FGD_VENV"
    _pip="$FGD_VENV/bin/python -m pip"
    $_pip install -q --upgrade 'pip<25' 'setuptools<70' wheel
    # torch first: mmcv's build (no build isolation) compiles against it.
    if [ -n "${FGD_TORCH:-}" ]; then
        $_pip install -q -r "$_fgd_req/torch.txt" \
            --index-url "https://download.pytorch.org/whl/$FGD_TORCH" \
            --extra-index-url https://pypi.org/simple
    else
        $_pip install -q -r "$_fgd_req/torch.txt"
    fi
    _mmcv_pin="$(grep -E '^mmcv==' "$_fgd_req/mmcv.txt")"
    _py="$FGD_VENV/bin/python"
    # The wheel fits one torch, CUDA version and arch list: cached by them.
    _mmcv_tool="$_fgd_root/tools/mmcv_wheel.py"
    _root="$FGD_CACHE/wheels/${_mmcv_pin/==/-}"
    _wheels="$("$_py" "$_mmcv_tool" dir "$_root")"
    if ! "$_py" "$_mmcv_tool" find "$_root" >/dev/null; then
        echo "[setup_env] building $_mmcv_pin with ops in $_wheels" >&2
        # torch may have upgraded setuptools; mmcv's setup.py needs
        # pkg_resources (setuptools < 70).
        $_pip install -q ninja psutil 'setuptools<70'
        _src="$(mktemp -d)"
        $_pip download -q --no-deps --no-binary :all: \
            --no-build-isolation -d "$_src" "$_mmcv_pin"
        tar -xzf "$_src"/mmcv-*.tar.gz -C "$_src"
        _ops="$("$_py" "$_mmcv_tool" ops)"
        if [ "$_ops" = cuda ]; then
            _archs="$("$_py" "$_mmcv_tool" arch)"
            _build_env=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$_archs")
            "$_py" "$_mmcv_tool" fix-src "$_src"/mmcv-*/
        else
            # mmcv compiles CUDA ops whenever torch sees a GPU
            _build_env=(CUDA_VISIBLE_DEVICES=)
        fi
        mkdir -p "$_wheels"
        env "${_build_env[@]}" MMCV_WITH_OPS=1 \
            MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            $_pip wheel --no-deps --no-build-isolation -w "$_wheels" \
            "$_src"/mmcv-*/
        rm -rf "$_src"
    fi
    $_pip install -q --find-links "$_wheels" -r "$_fgd_req/mmcv.txt"
    $_pip install -q -r "$_fgd_req/runtime.txt"
    # Fails loudly if mmcv's ops do not fit this torch (NMS on the GPU
    # where there is one).
    "$_py" "$_mmcv_tool" check
    $_pip install -q -r "$_fgd_req/tests.txt"
    $_pip install -q --no-deps -e "$_fgd_root"
    "$FGD_VENV/bin/python" -c "import fgd_mmrazor, mmcv.ops, mmyolo, mmrazor.models"
    touch "$_fgd_stamp"
    echo "[setup_env] ready in $(( $(date +%s) - _t0 )) s" >&2
fi

# Always point the editable install at this checkout (cheap, no deps).
if [ "$(cat "$FGD_VENV/.fgd_src" 2>/dev/null)" != "$_fgd_root" ]; then
    "$FGD_VENV/bin/python" -m pip install -q --no-deps -e "$_fgd_root"
    echo "$_fgd_root" > "$FGD_VENV/.fgd_src"
fi

export FGD_VENV
export PATH="$FGD_VENV/bin:$PATH"
export VIRTUAL_ENV="$FGD_VENV"
set +eo pipefail
