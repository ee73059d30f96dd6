"""Loading of checkpoints that cannot run code or exhaust the process.

A checkpoint is a pickle, and unpickling can call any function the file
names. Here it is read by a pickle machine of our own whose rules make
only what an mmengine checkpoint holds, within a memory budget derived
from the file, on every route:

* :mod:`.unpickler`: the opcodes (no object of a foreign type is made
  there);
* :mod:`.rules`: the allow-list, what each allowed global may be given,
  and the budget;
* :mod:`.archive`: the torch archive's directory, torch's readers, the
  one error (:func:`safe_load`);
* :mod:`.tree`: the last check of what was loaded;
* :mod:`.routes`: mmengine's ``CheckpointLoader`` schemes;
* :mod:`.url_cache`: the checked download cache of URLs;
* :mod:`.teacher`: teacher checkpoints, with their values checked.

Nothing here turns the safety off: no ``weights_only=False``, no
environment override.
"""
from .archive import is_uri, read_checkpoint, safe_load
from .errors import UnsafeCheckpointError
from .routes import SAFE_SCHEMES, refuse_scheme, register_checkpoint_loader
from .rules import ALLOWED_GLOBALS, SLACK
from .teacher import load_teacher_checkpoint
from .tree import check_checkpoint_tree
from .url_cache import cached_download

__all__ = [
    'safe_load', 'read_checkpoint', 'is_uri', 'UnsafeCheckpointError',
    'register_checkpoint_loader', 'refuse_scheme', 'SAFE_SCHEMES',
    'ALLOWED_GLOBALS', 'SLACK', 'load_teacher_checkpoint',
    'check_checkpoint_tree', 'cached_download'
]
