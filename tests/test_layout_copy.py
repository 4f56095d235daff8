"""The NHWC <-> NCHW copies of an algorithm run in its other layout (``convbench.layouts.convert``)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from convbench.kernels import grain
from convbench.kernels._parallel import threads_used
from convbench.kernels.layout_copy import transpose_layout
from convbench.layouts import convert
from convbench.machine.threads import limit_threads


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 1, 1, 1), (3, 4, 1, 6), (1, 17, 9, 2)])
def test_conversions_are_the_transposes_on_any_thread_count(monkeypatch, dtype, shape):
    monkeypatch.setattr(grain, "_active", grain.Grain(1.0, 1.0, "test"))  # every row its own grain
    x = (np.arange(np.prod(shape)) % 251).astype(dtype).reshape(shape)
    for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
        with limit_threads(threads):
            threads_used()
            nhwc = convert(x, "nchw", "nhwc")
            back = convert(nhwc, "nhwc", "nchw")
            assert threads_used() == min(threads, shape[0] * shape[2])
        np.testing.assert_array_equal(nhwc, x.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(back, x)
        assert nhwc.flags.c_contiguous and back.flags.c_contiguous and nhwc.dtype == x.dtype


def test_a_strided_input_is_copied_first():
    x = np.arange(2 * 3 * 4 * 10, dtype=np.float32).reshape(2, 3, 4, 10)[..., ::2]
    np.testing.assert_array_equal(convert(x, "nchw", "nhwc"), x.transpose(0, 2, 3, 1))


def test_bad_layouts_and_shapes_are_named():
    with pytest.raises(ValueError, match="3-D|\\(2, 3, 4\\)"):
        transpose_layout(np.zeros((2, 3, 4)), "nchw")
    with pytest.raises(ValueError, match="'nhcw'"):
        convert(np.zeros((1, 2, 3, 4)), "nchw", "nhcw")
