"""The memory read the benchmark times beside sgemm reads every byte, on one thread or two."""

import numba
import pytest

from convbench.kernels.memory_read import ROWS, stream_read
from convbench.machine.threads import limit_threads


@pytest.mark.parametrize("threads", [1, 2])
def test_stream_read_reads_the_whole_array_on_each_thread_count(threads, monkeypatch):
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"numba has {numba.config.NUMBA_NUM_THREADS} thread(s) here")
    from convbench.kernels import grain

    monkeypatch.setattr(grain, "_active", grain.Grain(1.0, 1.0, "test"))  # every step on every thread
    read = stream_read(ROWS * 4 * 33)  # 33 floats a row: a tail past the vector width
    with limit_threads(threads):
        assert read() == ROWS * 33
