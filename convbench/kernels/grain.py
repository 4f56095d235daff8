"""The grain: how much work pays for one more thread on this machine.

Going parallel has a fixed cost: a helper thread must see the task (a few
microseconds when it is polling, 18-50 us when it sleeps on the 2-vCPU VMs),
take its chunks and report them, and BLAS must be told how many threads to
use. A step whose work is smaller than that cost runs *slower* on two
threads than on one (issue 31 measured 1.2-2.5x slower on a 4 MFLOP
MobileNet layer of about 50 us). So every parallel step of a built-in says
how much work it holds, in floating-point operations (``flops``, for steps
bound by arithmetic) or bytes moved (``nbytes``, for copies and transforms
bound by memory), and :func:`threads_for` gives it one thread per
:attr:`Grain.flops` / :attr:`Grain.nbytes` of work, never more than the
case's ``threads`` (``numba.get_num_threads()``, set by
:func:`convbench.machine.threads.limit_threads`).

The grain is measured per machine by ``convbench tune``
(:mod:`convbench.kernels.grain_tune`: the work at which two threads first
beat one by a margin, on the GEMM micro-kernel for ``flops`` and on the
im2row copy for ``nbytes``) and cached with the tuned kernel configuration,
under ``cpu_key()`` + ``" | grain"``; until then :data:`DEFAULT` (the Zen 4 VM's numbers, with
margin) is used. Steps of Python calls (:func:`convbench.kernels._parallel.parallel_numpy`)
need :attr:`Grain.python` times more work, also measured by ``tune``.
``CONVBENCH_GRAIN=FLOPS,BYTES`` forces one for every step, compiled or Python (``0,0``: every
step on every thread, as before issue 31).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: The environment variable that forces a grain: ``FLOPS,BYTES`` per thread.
ENV_VAR = "CONVBENCH_GRAIN"
#: Suffix of the grain's key in the tune cache (after ``cpu_key()``).
KEY_SUFFIX = " | grain"


@dataclass(frozen=True)
class Grain:
    """The least work one thread's share must hold, and where that number came from."""

    flops: float  #: floating-point operations per thread (arithmetic-bound steps)
    nbytes: float  #: bytes moved per thread (copies, transforms)
    source: str = "default"  #: ``default``, ``tuned`` or ``env CONVBENCH_GRAIN``
    #: how many times more work a step of Python calls (numpy, BLAS, scipy.fft chunks
    #: through :func:`._parallel.parallel_numpy`) needs than a compiled one: each of its
    #: chunks takes the GIL, and a thread that finds it held sleeps
    python: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Before ``convbench tune``: on the Zen 4 VM a sleeping helper took up to
#: ~50 us to join and one core ran the GEMM kernel at ~90 GFLOP/s and the
#: im2row copy at ~20 GB/s, so a second thread pays for itself above about
#: 2 x 90e9 x 50e-6 = 9 MFLOP of GEMM, i.e. 4.5 MFLOP a thread (and about
#: 1 MB of copying a thread); rounded up, as a split that does not pay
#: costs more than one that is missed.
#: The Python factor is the Zen 3 VM's (``tune`` found 3.2-8.7 there: Winograd's 16 plane
#: GEMMs through the pool's Python chunks ran 0.64x at two threads against one at
#: 4.7 MFLOP and first reached 1.15x near 25 MFLOP, where the GEMM kernel did near 4.5).
DEFAULT = Grain(flops=5e6, nbytes=1 << 20, python=4.0)

_active: Grain | None = None


def _from_env() -> Grain | None:
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return None
    try:
        flops, nbytes = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be 'FLOPS,BYTES' (two numbers, the work per thread), "
                         f"got {text!r}") from None
    if flops < 0 or nbytes < 0:
        raise ValueError(f"{ENV_VAR} must hold two numbers >= 0, got {text!r}")
    return Grain(flops, nbytes, f"env {ENV_VAR}")


def cached_grain() -> Grain | None:
    """The grain ``convbench tune`` measured on this CPU, or ``None``."""
    from .configs import tuned_entry

    entry = tuned_entry(KEY_SUFFIX)
    if entry is None:
        return None
    try:
        return Grain(float(entry["flops"]), float(entry["nbytes"]), "tuned",
                     float(entry.get("python", DEFAULT.python)))  # an older tune's entry: the default's
    except (KeyError, TypeError, ValueError):  # another version's entry: ignore it
        return None


def active_grain() -> Grain:
    """The grain of this process: forced, tuned or :data:`DEFAULT` (resolved once)."""
    global _active
    if _active is None:
        _active = _from_env() or cached_grain() or DEFAULT
    return _active


def reset_grain() -> None:
    """Forget the resolved grain (after ``tune`` or in tests)."""
    global _active
    _active = None


def threads_for(flops: float = 0.0, nbytes: float = 0.0, most: int | None = None, python: bool = False) -> int:
    """Threads for a step holding ``flops`` operations and moving ``nbytes``: one per
    grain of work (the larger count of the two), at least 1, at most ``most``
    (default: the case's ``numba.get_num_threads()``). ``python``: the step's chunks
    are Python calls, whose grain is :attr:`Grain.python` times larger."""
    g = active_grain()
    scale = g.python if python else 1.0
    share = max(flops / (g.flops * scale) if g.flops > 0 else np.inf,
                nbytes / (g.nbytes * scale) if g.nbytes > 0 else np.inf)
    if not (flops or nbytes):
        share = np.inf  # no estimate: every thread, as before
    if share < 2:
        return 1  # less than two grains: one thread, whatever the case has (asking numba takes 2-4 us)
    if most is None:
        import numba

        most = numba.get_num_threads()
    return int(max(1, min(most, share)))
