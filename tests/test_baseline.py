"""The baseline must be sane on every layer class: every "vs baseline" figure divides by it.

NHWC im2col on depthwise layers ran at about 0.1 GFLOP/s (a group-major
im2row of 1-channel runs, then a 3-index einsum): 8-50x slower than the
same layer in NCHW, which inflated every depthwise speedup by as much.
"""

from __future__ import annotations

import time

import pytest

import convbench


def _best_time(call, x, repeats: int = 15) -> float:
    call(x)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call(x)
        best = min(best, time.perf_counter() - start)
    return best


def _spec(layout: str, **kw) -> convbench.ConvSpec:
    shape = dict(batch=1, in_channels=32, out_channels=32, height=56, width=56, kernel=3, stride=1, padding=1,
                 groups=32, dtype="float32")
    shape.update(kw)
    return convbench.ConvSpec(**shape, layout=layout)


@pytest.mark.parametrize("stride", [1, 2])
def test_nhwc_depthwise_im2col_is_as_fast_as_nchw_within_a_small_factor(stride):
    algo = convbench.get_algorithm("im2col")
    times = {}
    for layout in ("nchw", "nhwc"):
        spec = _spec(layout, stride=stride)
        x, w = spec.random_inputs(seed=0)
        times[layout] = _best_time(algo.prepare(spec, w), x)
    # best of 15 calls each; the old path was 8x or more slower on this layer
    assert times["nhwc"] < 4 * times["nchw"], times


@pytest.mark.parametrize("shape", [
    dict(),  # MobileNet-like depthwise 3x3
    dict(stride=2, padding=(0, 2, 1, 0)),  # asymmetric padding
    dict(out_channels=64, dilation=2, padding=2),  # channel multiplier 2, dilation
    dict(batch=2, height=5, width=4, kernel=(3, 5), padding=(0, 0, 2, 2)),  # 1xN-ish, batch 2
])
def test_nhwc_depthwise_im2col_is_right(shape):
    spec = _spec("nhwc", **{"height": 9, "width": 7, **shape})
    x, w = spec.random_inputs(seed=1)
    y = convbench.get_algorithm("im2col").prepare(spec, w)(x)
    ref = convbench.reference(spec, x, w)
    assert y.shape == ref.shape
    assert convbench.relative_error(y, ref) < 1e-5
