"""numba's on-disk cache, made to notice a change in any file a kernel compiles from.

numba keys a cached kernel to its *own* source file: the stamp it checks is that
file's time and size. What a kernel inlines or links from other files (the
intrinsics of ``_intrinsics.py``, the work counter of ``_parallel.py``, a tile
function) is not in that stamp, so after those files change (a ``git pull`` of
an editable install, an upgrade whose ``__pycache__`` survives) numba hands back
the old machine code. Measured: doubling every product in ``vfma`` left
``direct-blocked`` exact from its cache, and wrong by 9.3 once the cache was
deleted. Here every kernel's stamp also carries a fingerprint of every source
file of its package, so a change to any of them recompiles them all.
"""

from __future__ import annotations

import os
from pathlib import Path

from numba.core import caching

_GUARDED: dict[str, tuple] = {}  # a package folder -> the fingerprint of its sources


def fingerprint(folder: str | os.PathLike) -> tuple:
    """What numba's own stamp holds for one file (time and size), for every ``.py`` file of
    ``folder``, sorted by name: a change to any of them changes it."""
    out = []
    for path in sorted(Path(folder).glob("*.py")):
        st = path.stat()
        out.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def guard(folder: str | os.PathLike) -> None:
    """Stamp every kernel cached from a file of ``folder`` with :func:`fingerprint` of
    ``folder``. Call it before the package's first ``@njit(cache=True)`` runs: numba takes a
    function's stamp when it is decorated."""
    _GUARDED[os.path.realpath(folder)] = fingerprint(folder)


def _guarded_stamp(self):  # numba's locator method, widened
    stamp = _numba_stamp(self)
    extra = _GUARDED.get(os.path.dirname(os.path.realpath(self._py_file)))
    return stamp if extra is None else (stamp, extra)


# every locator that reads a source file (in-tree, user-wide, NUMBA_CACHE_DIR) has this stamp;
# an import error here, in a numba that renamed it, is better than stale kernels
_mixin = caching._SourceFileBackedLocatorMixin
_numba_stamp = getattr(_mixin.get_source_stamp, "__wrapped_by_convbench__", _mixin.get_source_stamp)
_guarded_stamp.__wrapped_by_convbench__ = _numba_stamp  # type: ignore[attr-defined]
_mixin.get_source_stamp = _guarded_stamp
