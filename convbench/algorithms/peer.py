"""What every peer shares: the base class and registration only where installed.

A *peer* is a production library measured beside convbench's own
algorithms, through the same interface (``torch``, ``onednn``,
``onnxruntime``). Peers are optional: a peer module registers its class only
when the packages it needs can be found (:func:`register_if_installed`), and
imports them at the first ``prepare``, never at registration (importing
torch costs seconds that every sweep would otherwise pay). A dtype or layout
the library cannot compute is refused by ``supports`` with the reason; a
peer never converts it silently.
"""

from __future__ import annotations

import importlib.util
from typing import ClassVar, TypeVar

from ..registry import register
from ..algorithm import Algorithm

P = TypeVar("P", bound=type)


def installed(*packages: str) -> bool:
    """Whether every top-level package can be imported (found, not imported)."""
    for name in packages:
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):  # a module set to None in sys.modules, a broken parent
            return False
    return True


class Peer(Algorithm):
    """Base class of the peers: ``peer = True`` and the packages it needs.

    A peer's workspace is the library's own business: ``workspace_bytes``
    stays ``None`` (unknown, never 0), and its memory is measured from the
    resident set (``memory_traced = False``: tracemalloc cannot see torch's,
    oneDNN's or ONNX Runtime's allocators; see :mod:`convbench.sweep.footprint`).
    """

    peer = True
    memory_traced = False
    #: import names that must be installed for the peer to be registered
    packages: ClassVar[tuple[str, ...]] = ()


def register_if_installed(cls: P) -> P:
    """Register the peer class ``cls`` when its ``packages`` are installed; return it."""
    if installed(*cls.packages):
        register(cls)
    return cls
