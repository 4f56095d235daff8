"""A plugin for the executor tests: an algorithm that waits at a gate.

Loaded as a plugin file (``--plugin tests/plugins/gate.py``) so isolated
workers on any executor load it too. Never registered by convbench itself.

- ``gate-wait``: right answers (the float64 reference, cast); on NHWC layers
  every call waits while the file named by ``$CONVBENCH_TEST_GATE`` exists,
  so a test can hold a task in the middle of its shard (after its NCHW
  groups are on disk), kill it there, then open the gate and resume.
"""

from __future__ import annotations

import os
import time

import convbench


@convbench.register
class GateWait(convbench.Algorithm):
    name = "gate-wait"
    description = "the reference, cast; NHWC calls wait while $CONVBENCH_TEST_GATE exists"

    def prepare(self, spec, weight):
        gate = os.environ.get("CONVBENCH_TEST_GATE")

        def call(x):
            while gate and spec.layout == "nhwc" and os.path.exists(gate):
                time.sleep(0.05)
            return convbench.reference(spec, x, weight).astype(spec.dtype)
        return call
