"""Every route to a checkpoint reads through :func:`~.archive.safe_load`.

:func:`register_checkpoint_loader` makes the safe loaders mmengine's
``CheckpointLoader`` loaders for every scheme (local files,
``http(s)://``, ``torchvision://``, ``open-mmlab://``, ``mmcls://``,
``s3://``/``petrel://``, ``pavi://``), so that ``load_from``,
``--resume``, ``teacher_ckpt``, ``init_cfg`` checkpoints,
``tools/test.py``, ``tools/export_student.py`` and the analysis tools all
read through it. A scheme another package registers, which has no safe
loader here, is replaced by one that refuses. URLs are downloaded through
the checked cache of :mod:`.url_cache`. It is installed on
``import fgd_mmrazor``.
"""
import io
import os
import os.path as osp
from tempfile import TemporaryDirectory
from typing import Any, Callable, Tuple, Union

from mmengine.runner import checkpoint as mme_ckpt
from mmengine.runner.checkpoint import CheckpointLoader

from .archive import _load_named, safe_load
from .errors import UnsafeCheckpointError
from .url_cache import cached_download, open_entry

__all__ = ['register_checkpoint_loader', 'load_uri', 'SAFE_SCHEMES']


def load_uri(uri: str, map_location: Any = 'cpu') -> Any:
    """Load a URI through the safe loader of its scheme."""
    register_checkpoint_loader()
    return CheckpointLoader.load_checkpoint(uri, map_location)


def _load_local(filename, map_location=None):
    return safe_load(filename, map_location)


def _load_http(filename, map_location=None, model_dir=None,
               progress=os.isatty(0)):
    path = cached_download(filename, model_dir, progress)
    with open_entry(path) as file:
        return _load_named(file, filename, map_location)


def _load_torchvision(filename, map_location=None):
    name = filename.split('://', 1)[1]
    return _load_http(mme_ckpt.get_torchvision_models()[name], map_location)


def _load_openmmlab(filename, map_location=None):
    name = filename.split('://', 1)[1]
    name = mme_ckpt.get_deprecated_model_names().get(name, name)
    url = mme_ckpt.get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return _load_http(url, map_location)
    return safe_load(osp.join(mme_ckpt._get_mmengine_home(), url),
                     map_location)


def _load_mmcls(filename, map_location=None):
    url = mme_ckpt.get_mmcls_models()[filename[len('mmcls://'):]]
    return mme_ckpt._process_mmcls_checkpoint(_load_http(url, map_location))


def _load_ceph(filename, map_location=None, backend='petrel'):
    from mmengine.fileio import get_file_backend
    data = get_file_backend(
        filename, backend_args={'backend': backend}).get(filename)
    with io.BytesIO(data) as buffer:
        return _load_named(buffer, filename, map_location)


def _load_pavi(filename, map_location=None):  # pragma: no cover - no pavi
    from pavi import modelcloud
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        downloaded = osp.join(tmp_dir, model.name)
        model.download(downloaded)
        return safe_load(downloaded, map_location)


#: mmengine's checkpoint schemes and their safe loaders.
SAFE_SCHEMES: Tuple[Tuple[Union[str, Tuple[str, ...]], Callable], ...] = (
    ('', _load_local),
    (('http://', 'https://'), _load_http),
    (('modelzoo://', 'torchvision://'), _load_torchvision),
    (('open-mmlab://', 'openmmlab://'), _load_openmmlab),
    ('mmcls://', _load_mmcls),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), _load_ceph),
    ('pavi://', _load_pavi),
)


def register_checkpoint_loader() -> bool:
    """Make the safe loaders mmengine's loaders for every scheme.

    Idempotent (re-registers if another package replaced one). A scheme
    that another package registered, which has no safe loader here, is
    replaced by one that refuses to load.

    Returns:
        bool: True.
    """
    ours = {loader for _, loader in SAFE_SCHEMES}
    for prefixes, loader in SAFE_SCHEMES:
        CheckpointLoader.register_scheme(
            prefixes=prefixes, loader=loader, force=True)
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if loader not in ours:
            CheckpointLoader.register_scheme(
                prefixes=prefix, loader=refuse_scheme, force=True)
    return True


def refuse_scheme(filename, map_location=None):
    raise UnsafeCheckpointError(
        filename, 'fgd_mmrazor has no safe loader for its scheme; download '
        'it and pass the local file')
