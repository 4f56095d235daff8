"""gemm-direct's depthwise products in one compiled pass (convbench/kernels/window_depthwise.py)."""

from __future__ import annotations

import numpy as np
import pytest

from convbench.kernels.window_depthwise import plan_window_depthwise


def _arrays(groups=5, mult=1, rows=12, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    planes = rng.uniform(-1, 1, (2, 1, rows, groups)).astype(dtype)
    taps = np.array([(0, 0, 0), (1, 0, 2), (0, 0, 3)], np.int64)
    w = rng.uniform(-1, 1, (3, groups * mult)).astype(dtype)
    return planes, taps, w


@pytest.mark.parametrize("mult", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_taps_window_times_its_weights_is_added_onto_the_accumulator(mult, dtype):
    planes, taps, w = _arrays(mult=mult, dtype=dtype)
    r0, r1 = 2, 9
    acc = np.ones((r1 - r0, w.shape[1]), dtype)
    want = acc.astype(np.float64).copy()
    for t, (a, b, off) in enumerate(taps):
        window = planes[a, b, off + r0: off + r1].astype(np.float64)  # (rows, G)
        want += np.repeat(window, mult, axis=1) * w[t]
    plan_window_depthwise(planes.shape, taps, w)(planes, r0, r1, acc)
    np.testing.assert_allclose(acc, want, rtol=1e-5)


def test_it_refuses_windows_past_the_planes_and_arrays_that_do_not_fit():
    planes, taps, w = _arrays(rows=12)
    run = plan_window_depthwise(planes.shape, taps, w)
    acc = np.zeros((10, w.shape[1]), np.float32)
    with pytest.raises(ValueError, match="reach past"):  # the last tap's window: rows 3..13 of 12
        run(planes, 0, 10, acc)
    with pytest.raises(ValueError, match="not one of"):  # no third plane
        plan_window_depthwise(planes.shape, np.array([(2, 0, 0)] * 3, np.int64), w)
    with pytest.raises(ValueError, match="do not fit"):
        plan_window_depthwise(planes.shape, taps, w[:2])
    for args in [(planes.astype(np.float64), 0, 2, acc[:2]), (planes[:, :, :6], 0, 2, acc[:2]),
                 (planes, 0, 3, acc[:2]), (planes, 0, 2, acc[:2].astype(np.float64))]:
        with pytest.raises(ValueError, match="do not fit"):
            run(*args)
