"""``gemm-direct``'s depthwise products: every tap's shifted window times the tap's weights,
added up in one compiled pass.

``gemm-direct`` reads each tap as a contiguous window of a phase plane
(:mod:`convbench.algorithms.gemm_direct`). On a depthwise layer a tap is no GEMM but one
product per channel. As numpy's multiply into a buffer and add into the accumulator that is
three passes over memory a tap, and its time depended on where numpy's buffers lay: the same
9 taps over 63 x 1024 float32 arrays took 0.21-0.23 ms, or 0.96-1.0 ms for every third
allocation in a loop, on the Zen 3 VM (so gemm-direct on MobileNet's conv_dw_13 varied
threefold from one process to the next). Fused into one loop that reads the window and the
accumulator and writes the accumulator: 62-80 us, at every allocation.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit


@njit(nogil=True, fastmath=True, cache=True)
def _window_taps(planes, taps, w, r0, r1, acc):  # pragma: no cover - compiled
    """``acc[p, c * M + m] += planes[a, b, off + r0 + p, c] * w[t, c * M + m]`` for every tap ``t = (a, b, off)``."""
    groups, k = planes.shape[3], acc.shape[1]
    mult = k // groups
    for t in range(taps.shape[0]):
        wt = w[t]
        for p in range(r1 - r0):
            src = planes[taps[t, 0], taps[t, 1], taps[t, 2] + r0 + p]
            dst = acc[p]
            if mult == 1:  # one output a channel: a contiguous multiply-add LLVM vectorises
                for c in range(groups):
                    dst[c] += src[c] * wt[c]
            else:
                for c in range(groups):
                    x = src[c]
                    for m in range(mult):
                        dst[c * mult + m] += x * wt[c * mult + m]


def plan_window_depthwise(planes_shape: tuple[int, int, int, int], taps: np.ndarray, w: np.ndarray
                          ) -> Callable[[np.ndarray, int, int, np.ndarray], None]:
    """``run(planes, r0, r1, acc)``: add every tap's product over rows ``[r0, r1)`` of the
    windows into ``acc``.

    ``planes`` ``(SH, SW, rows, G)`` (``planes_shape``): the phase planes, one channel a group;
    ``taps`` int64 ``(T, 3)``: a tap's plane ``(a, b)`` and the offset of its window's first
    row; ``w`` ``(T, G * M)``: a tap's weights, output ``c * M + m`` of channel ``c``; ``acc``
    ``(r1 - r0, G * M)``, of ``w``'s dtype. The taps are checked against the planes here, once;
    ``run`` checks its arrays and rows: every index the kernel forms (numba checks none)."""
    planes_shape = tuple(planes_shape)
    sh, sw, rows, groups = planes_shape
    n_t = len(taps)
    if not (taps.dtype == np.int64 and taps.shape == (n_t, 3) and w.shape[0] == n_t and w.shape[1] % groups == 0
            and taps.flags.c_contiguous and w.flags.c_contiguous):
        raise ValueError(f"window_depthwise: taps {taps.shape} {taps.dtype} and weights {w.shape} do not fit "
                         f"{groups} channels")
    if n_t and not ((taps[:, 0] >= 0).all() and (taps[:, 0] < sh).all() and (taps[:, 1] >= 0).all()
                    and (taps[:, 1] < sw).all() and (taps[:, 2] >= 0).all()):
        raise ValueError(f"window_depthwise: a tap's plane or offset is not one of {sh}x{sw} planes")
    last = int(taps[:, 2].max()) if n_t else 0  # the farthest window's first row

    def run(planes: np.ndarray, r0: int, r1: int, acc: np.ndarray) -> None:
        if not (planes.shape == planes_shape and planes.dtype == w.dtype == acc.dtype
                and acc.shape == (r1 - r0, w.shape[1]) and planes.flags.c_contiguous and acc.flags.c_contiguous):
            raise ValueError(f"window_depthwise: planes {planes.shape} {planes.dtype} and accumulator {acc.shape} "
                             f"{acc.dtype} do not fit planes {planes_shape} and weights {w.shape} {w.dtype}")
        if not 0 <= r0 <= r1 or last + r1 > rows:
            raise ValueError(f"window_depthwise: rows [{r0}, {r1}) of the taps' windows reach past planes of "
                             f"{rows} rows")
        _window_taps(planes, taps, w, r0, r1, acc)

    return run
