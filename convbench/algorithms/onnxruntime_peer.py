"""``onnxruntime``: ONNX Runtime's CPU execution provider (MLAS) on a one-node model.

``prepare`` builds, in memory with ``onnx.helper``, a model holding one
``Conv`` node whose weights are an initializer (so ONNX Runtime may
pre-pack them when the session is created, as it does for a real model),
and opens a session on the CPU execution provider with intra- and
inter-op threads set to the case's count (read once: a session's pools are
fixed at creation). The call is ``session.run``.

ONNX Runtime's float CPU ``Conv`` is float32 and NCHW only (there is no CPU
``NhwcConv`` kernel and no float64 ``Conv``): float64 and NHWC float specs
are skipped with that reason rather than converted. The row's implementation
says which kernels the session's graph optimizer chose:
``onnxruntime:mlas-nchwc`` when it rewrote the node into MLAS's blocked
NCHWc convolution (input and output reorders included in the call's time),
``onnxruntime:mlas`` for the plain MLAS convolution.

8-bit (``u8s8``): the one node is a ``QLinearConv`` (u8 ``X`` with
``x_scale``/``x_zero``, the s8 weight with per-channel ``w_scale`` and zero
points 0, ``y_scale``/``y_zero``, the int32 bias ``B``), every parameter an
initializer, so the session prepacks the weights once. MLAS's 8-bit
convolution is channels-last: for an NCHW model the session's optimizer
wraps the node in two ``Transpose`` nodes of its own (inside the call's time,
``onnxruntime:mlas-qlinearconv-nhwc+transposes``), and an NHWC spec is the
``com.microsoft`` ``QLinearConv`` with ``channels_last=1`` that this
rewrite produces, with no transpose (``onnxruntime:mlas-qlinearconv-nhwc``).
Both forms, float and 8-bit, run with the case's thread count.

Phases: one ``other`` step (a plain callable: the library's call is opaque).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from ..spec import ConvSpec
from ..algorithm import Array, ConvCall
from ..quant import QuantizedWeight
from .peer import Peer, register_if_installed

OPSET = 17
#: The contrib domain of ONNX Runtime's channels-last QLinearConv.
MS_DOMAIN = "com.microsoft"


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


def qlinear_conv_model(spec: ConvSpec, qw: QuantizedWeight) -> Any:
    """A one-node ONNX model computing the ``u8s8`` ``spec``: ``QLinearConv`` (NCHW) or,
    for an NHWC spec, ONNX Runtime's ``com.microsoft`` ``QLinearConv`` with ``channels_last=1``."""
    from onnx import TensorProto, helper, numpy_helper

    top, bottom, left, right = spec.padding
    k = spec.out_channels
    params = [  # QLinearConv's inputs 1..8, after X
        ("x_scale", np.array(qw.x_scale, np.float32)), ("x_zero", np.array(qw.x_zero, np.uint8)),
        ("W", np.ascontiguousarray(qw.weight, np.int8)), ("w_scale", np.ascontiguousarray(qw.w_scale, np.float32)),
        ("w_zero", np.zeros(k, np.int8)), ("y_scale", np.array(qw.y_scale, np.float32)),
        ("y_zero", np.array(qw.y_zero, np.uint8)), ("B", np.ascontiguousarray(qw.bias, np.int32)),
    ]
    nhwc = spec.layout == "nhwc"
    node = helper.make_node(
        "QLinearConv", ["X", *(n for n, _ in params)], ["Y"], name="qconv",
        kernel_shape=list(spec.kernel), strides=list(spec.stride), dilations=list(spec.dilation),
        pads=[top, left, bottom, right], group=spec.groups,
        **({"domain": MS_DOMAIN, "channels_last": 1} if nhwc else {}))
    graph = helper.make_graph(
        [node], "convbench",
        [helper.make_tensor_value_info("X", TensorProto.UINT8, list(spec.input_shape))],
        [helper.make_tensor_value_info("Y", TensorProto.UINT8, list(spec.output_shape))],
        initializer=[numpy_helper.from_array(a, n) for n, a in params],
    )
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid(MS_DOMAIN, 1)] if nhwc else [])
    return helper.make_model(graph, opset_imports=opsets)


@register_if_installed
class OnnxRuntimeConv(Peer):
    name = "onnxruntime"
    description = ("ONNX Runtime CPU execution provider (MLAS), a one-node Conv model; float32 NCHW; "
                   "u8s8: a QLinearConv model, NCHW or NHWC")
    natural_layout = "nchw"
    constraints = "float32 NCHW, u8s8"
    library = "onnxruntime"
    packages = ("onnx", "onnxruntime")
    dtypes = ("float32", "u8s8")

    def __init__(self) -> None:
        self._kernels: dict[tuple[ConvSpec, int], str] = {}  # what each prepared session runs

    def supports(self, spec: ConvSpec) -> str | None:
        if spec.is_quantized:
            from .vnni import saturates_without_vnni

            reason = saturates_without_vnni()
            return f"MLAS: {reason}" if reason else None
        if spec.dtype != "float32":
            return f"ONNX Runtime's CPU Conv has no {spec.dtype} kernel"
        if spec.layout != "nchw":
            return "ONNX Runtime's CPU Conv is NCHW only (no NhwcConv kernel on the CPU provider)"
        return None

    def implementation(self, spec: ConvSpec) -> str:
        from ..machine.threads import case_threads

        default = "onnxruntime:mlas-qlinearconv" if spec.is_quantized else "onnxruntime:mlas"
        return self._kernels.get((spec, case_threads()), default)

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
            model = qlinear_conv_model(spec, weight) if spec.is_quantized else conv_model(spec, weight)  # type: ignore[arg-type]
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            self._kernels[(spec, threads)] = _kernel_name(options.optimized_model_filepath, spec.is_quantized)
        run = session.run

        def call(x: Array) -> Array:
            return run(None, {"X": x})[0]

        call.session = session  # type: ignore[attr-defined]  # for tests: the thread settings
        return call


def _kernel_name(path: str, quantized: bool = False) -> str:
    import onnx

    plain = "onnxruntime:mlas-qlinearconv" if quantized else "onnxruntime:mlas"
    try:
        ops = {n.op_type if not n.domain else f"{n.domain}.{n.op_type}" for n in onnx.load(path).graph.node}
    except Exception:  # no dump written: say what is certain
        return plain
    if quantized:
        if f"{MS_DOMAIN}.QLinearConv" not in ops:
            return plain
        return f"{plain}-nhwc" + ("+transposes" if "Transpose" in ops else "")
    return "onnxruntime:mlas-nchwc" if "com.microsoft.nchwc.Conv" in ops else plain
