"""Fault injection for the robustness tests: algorithms that misbehave on purpose.

Loaded as a plugin *file* (``--plugin tests/plugins/faulty.py``) so the
isolated worker can load it too. Never registered by convbench itself.

- ``fault-ok``: right answers (the float64 reference, cast); the baseline.
- ``fault-raises``: ``prepare`` raises.
- ``fault-wrong-shape`` / ``fault-wrong-values``: wrong answers.
- ``fault-sleeps``: the warm-up call sleeps far past any test's ``--case-timeout``.
- ``fault-hangs-later``: right on the warm-up and calibration calls, then a sample sleeps.
- ``fault-abort``: ``os.abort()`` (SIGABRT) in the warm-up call.
- ``fault-segv``: kills itself with SIGSEGV in the warm-up call.
- ``fault-huge-workspace``: declares a workspace no machine has (the memory guard skips it).
- ``fault-allocates``: declares nothing but allocates ``CONVBENCH_FAULT_ALLOC`` bytes
  (default 1 TiB, which no test machine grants) in its call: past the worker's memory
  cap, a ``MemoryError``.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

import convbench


def _right(spec, weight):
    return lambda x: convbench.reference(spec, x, weight).astype(spec.dtype)


@convbench.register
class FaultOk(convbench.Algorithm):
    name = "fault-ok"
    description = "the reference, cast: always right"

    def prepare(self, spec, weight):
        return _right(spec, weight)


@convbench.register
class FaultRaises(convbench.Algorithm):
    name = "fault-raises"

    def prepare(self, spec, weight):
        raise RuntimeError("injected fault in prepare")


@convbench.register
class FaultWrongShape(convbench.Algorithm):
    name = "fault-wrong-shape"

    def prepare(self, spec, weight):
        return lambda x: np.zeros((1, 1, 1, 1), spec.dtype)


@convbench.register
class FaultWrongValues(convbench.Algorithm):
    name = "fault-wrong-values"

    def prepare(self, spec, weight):
        right = _right(spec, weight)
        return lambda x: right(x) * 2


@convbench.register
class FaultSleeps(convbench.Algorithm):
    name = "fault-sleeps"

    def prepare(self, spec, weight):
        def call(x):
            time.sleep(3600)
        return call


@convbench.register
class FaultHangsLater(convbench.Algorithm):
    name = "fault-hangs-later"

    def prepare(self, spec, weight):
        right = _right(spec, weight)
        calls = [0]

        def call(x):
            calls[0] += 1
            if calls[0] > 4:  # warm-up, memory and calibration calls pass; a sample hangs
                time.sleep(3600)
            return right(x)
        return call


@convbench.register
class FaultAbort(convbench.Algorithm):
    name = "fault-abort"

    def prepare(self, spec, weight):
        def call(x):
            os.abort()
        return call


@convbench.register
class FaultSegv(convbench.Algorithm):
    name = "fault-segv"

    def prepare(self, spec, weight):
        def call(x):
            os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(10)
        return call


@convbench.register
class FaultHugeWorkspace(convbench.Algorithm):
    name = "fault-huge-workspace"

    def workspace_bytes(self, spec):
        return 2**50  # 1 PiB

    def prepare(self, spec, weight):
        raise AssertionError("the memory guard should have skipped this case")


@convbench.register
class FaultAllocates(convbench.Algorithm):
    name = "fault-allocates"

    def prepare(self, spec, weight):
        right = _right(spec, weight)
        size = int(os.environ.get("CONVBENCH_FAULT_ALLOC", 2**40))

        def call(x):
            hog = np.ones(size // 8)  # touches every page: really uses the memory
            del hog
            return right(x)
        return call
