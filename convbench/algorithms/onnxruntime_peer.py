"""``onnxruntime``: ONNX Runtime's CPU execution provider (MLAS) on a one-node model.

``prepare`` builds, in memory with ``onnx.helper``, a model holding one
``Conv`` node whose weights are an initializer (so ONNX Runtime may
pre-pack them when the session is created, as it does for a real model),
and opens a session on the CPU execution provider with intra- and
inter-op threads set to the case's count (read once: a session's pools are
fixed at creation). The call is ``session.run``.

ONNX Runtime's CPU ``Conv`` is float32 and NCHW only (there is no CPU
``NhwcConv`` kernel and no float64 ``Conv``): other dtypes and NHWC are
skipped with that reason rather than converted. The row's implementation
says which kernels the session's graph optimizer chose:
``onnxruntime:mlas-nchwc`` when it rewrote the node into MLAS's blocked
NCHWc convolution (input and output reorders included in the call's time),
``onnxruntime:mlas`` for the plain MLAS convolution.

Phases: one ``other`` step (a plain callable: the library's call is opaque).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from ..spec import ConvSpec
from ..algorithm import Array, ConvCall
from .peer import Peer, register_if_installed

OPSET = 17


def conv_model(spec: ConvSpec, weight: Array) -> Any:
    """A one-node ONNX model computing ``spec`` with ``weight`` as an initializer."""
    from onnx import TensorProto, helper, numpy_helper

    top, bottom, left, right = spec.padding
    node = helper.make_node(
        "Conv", ["X", "W"], ["Y"], name="conv",
        kernel_shape=list(spec.kernel), strides=list(spec.stride), dilations=list(spec.dilation),
        pads=[top, left, bottom, right], group=spec.groups,  # ONNX: all begins, then all ends
    )
    graph = helper.make_graph(
        [node], "convbench",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(spec.input_shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, list(spec.output_shape))],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(weight, np.float32), "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


@register_if_installed
class OnnxRuntimeConv(Peer):
    name = "onnxruntime"
    description = "ONNX Runtime CPU execution provider (MLAS), a one-node Conv model; float32 NCHW"
    natural_layout = "nchw"
    constraints = "float32, NCHW only"
    library = "onnxruntime"
    packages = ("onnx", "onnxruntime")

    def __init__(self) -> None:
        self._kernels: dict[tuple[ConvSpec, int], str] = {}  # what each prepared session runs

    def supports(self, spec: ConvSpec) -> str | None:
        if spec.dtype != "float32":
            return f"ONNX Runtime's CPU Conv has no {spec.dtype} kernel"
        if spec.layout != "nchw":
            return "ONNX Runtime's CPU Conv is NCHW only (no NhwcConv kernel on the CPU provider)"
        return None

    def implementation(self, spec: ConvSpec) -> str:
        from ..machine.threads import case_threads

        return self._kernels.get((spec, case_threads()), "onnxruntime:mlas")

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        import onnxruntime as ort

        from ..machine.threads import case_threads

        threads = case_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # the optimized-model dump below warns on every session
        with tempfile.TemporaryDirectory(prefix="convbench-ort-") as tmp:
            # the optimized graph says which kernels the session will run (a cheap, public way)
            options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
            session = ort.InferenceSession(
                conv_model(spec, weight).SerializeToString(), options, providers=["CPUExecutionProvider"])
            self._kernels[(spec, threads)] = _kernel_name(options.optimized_model_filepath)
        run = session.run

        def call(x: Array) -> Array:
            return run(None, {"X": x})[0]

        call.session = session  # type: ignore[attr-defined]  # for tests: the thread settings
        return call


def _kernel_name(path: str) -> str:
    import onnx

    try:
        ops = {n.op_type if not n.domain else f"{n.domain}.{n.op_type}" for n in onnx.load(path).graph.node}
    except Exception:  # no dump written: say what is certain
        return "onnxruntime:mlas"
    return "onnxruntime:mlas-nchwc" if "com.microsoft.nchwc.Conv" in ops else "onnxruntime:mlas"
