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

A second gap: numba keys a cached *closure* (a kernel built by a factory, such
as ``direct-blocked``'s jobs around its tile functions) by the pickled contents
of its cells, and a jitted function pickles with an id that is new in every
process. So such a kernel was never found again: ``direct-blocked``'s jobs
kernel and the depthwise band kernel compiled afresh in every process (every
test process, every sweep worker), and each run added an entry to the cache's
index. Where the jitted function comes from a guarded folder, whose every file
is in the stamp, :func:`_stable_cell` keys it by its name, code and own cells.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable

from numba.core import caching
from numba.core.dispatcher import Dispatcher
from numba.core.serialize import dumps

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


def named_for(*params: object) -> Callable[[Callable], Callable]:
    """Name a kernel built by a factory for the values it is built for (``tile_3_4_32_8``).

    numba names compiled code by the function's qualified name and a counter of this
    process. Two kernels of one factory (a 3x4 tile and a 1x4 one) share the qualified name,
    and with the cache their counters come from different processes: one loaded from the
    cache and one compiled here could bear the same symbol, and a call of one then ran the
    other (measured: ``direct-blocked``'s one-pixel tile called in place of its five-pixel
    one, a fifth of the outputs 0, after other tests had filled the cache). A name of its
    own for every set of values makes that impossible; kernels of equal values are the same
    code."""
    suffix = "_".join(re.sub(r"\W", "", str(p)) for p in params)

    def rename(func: Callable) -> Callable:
        func.__name__ = func.__qualname__.rsplit(".", 1)[-1] + "_" + suffix
        func.__qualname__ = func.__qualname__ + "_" + suffix
        return func

    return rename


def _stable_cell(value: object) -> object:
    """A closure cell's value as the cache key should see it: a jitted function of a guarded
    folder by its module, name, code, options and (recursively) its own cells; anything else as
    it is (a jitted function from elsewhere keeps numba's per-process id: never stale, never
    found)."""
    if isinstance(value, tuple):
        return tuple(_stable_cell(v) for v in value)
    if isinstance(value, Dispatcher):
        func = value.py_func
        folder = os.path.dirname(os.path.realpath(func.__code__.co_filename))
        if folder in _GUARDED:
            cells = tuple(_stable_cell(c.cell_contents) for c in func.__closure__ or ())
            return ("jitted", func.__module__, func.__qualname__, func.__code__.co_code,
                    repr(sorted(value.targetoptions.items())), cells)
    return value


def _stable_index_key(self, sig, codegen):  # numba's Cache method, for closures of jitted functions
    closure = self._py_func.__closure__
    if not closure or not any(isinstance(_cell_value(c), (Dispatcher, tuple)) for c in closure):
        return _numba_index_key(self, sig, codegen)
    code = hashlib.sha256(self._py_func.__code__.co_code).hexdigest()
    cells = hashlib.sha256(dumps(tuple(_stable_cell(c.cell_contents) for c in closure))).hexdigest()
    return (sig, codegen.magic_tuple(), (code, cells))


def _cell_value(cell) -> object:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell: numba's own key fails the same way
        return None


_numba_index_key = getattr(caching.Cache._index_key, "__wrapped_by_convbench__", caching.Cache._index_key)
_stable_index_key.__wrapped_by_convbench__ = _numba_index_key  # type: ignore[attr-defined]
caching.Cache._index_key = _stable_index_key
