"""`convbench import` of 8-bit models: QLinearConv and ConvInteger nodes become u8s8 layers,
read like Conv nodes (checked against what ONNX Runtime computes for the node), ConvInteger's
missing requantization and the other signedness said in the layer's note, ONNX Runtime's
contrib QLinearConv listed, not guessed."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from convbench.algorithms.vnni import saturates_without_vnni
from convbench.cli import app
from convbench.config import load_config, parse_config
from convbench.onnx_import import import_onnx, render_config
from convbench.quant import QuantizedWeight
from convbench.reference import reference
from extras import have, needs_extra

pytestmark = needs_extra("peers", "onnx")
if have("peers", "onnx"):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

runner = CliRunner()
RNG = np.random.default_rng(0)


def _init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def _qlinear(name, x, y, k, cg, kh, kw, w_dtype=np.int8, **attrs):
    """A QLinearConv node and its initializers (weights, per-channel scales, bias)."""
    lo, hi = (-127, 128) if w_dtype == np.int8 else (0, 256)
    inits = [_init(f"{name}.W", RNG.integers(lo, hi, (k, cg, kh, kw)).astype(w_dtype)),
             _init(f"{name}.ws", RNG.uniform(0.002, 0.02, k).astype(np.float32)),
             _init(f"{name}.wz", np.zeros(k, w_dtype)),
             _init(f"{name}.B", RNG.integers(-2000, 2000, k).astype(np.int32))]
    node = helper.make_node("QLinearConv", [x, "xs", "xz", f"{name}.W", f"{name}.ws", f"{name}.wz", "ys", "yz",
                                            f"{name}.B"], [y], name=name, **attrs)
    return node, inits


def _shared(x_dtype=np.uint8):
    """The scales and zero points every node shares."""
    return [_init("xs", np.float32(0.02)), _init("xz", x_dtype(3)), _init("ys", np.float32(0.05)),
            _init("yz", x_dtype(5))]


def _model(nodes_inits, inputs, outputs, x_dtype=np.uint8, extra_nodes=(), extra_inits=(), opsets=()):
    nodes = [n for n, _ in nodes_inits] + list(extra_nodes)
    inits = [i for _, ii in nodes_inits for i in ii] + _shared(x_dtype) + list(extra_inits)
    graph = helper.make_graph(nodes, "qnet", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), *opsets])
    onnx.checker.check_model(model)
    return model


def _u8(name, shape, t=None):
    return helper.make_tensor_value_info(name, t or TensorProto.UINT8, shape)


def qnet():
    """stem (stride 2, asymmetric pads), a depthwise pair of the same shape, a grouped SAME_UPPER
    layer, a ConvInteger 1x1 and a float Conv of the ConvInteger's shape."""
    nodes = [
        _qlinear("stem", "X", "a", 8, 3, 3, 3, strides=[2, 2], pads=[0, 1, 1, 0]),
        _qlinear("dw1", "a", "b", 8, 1, 3, 3, group=8, pads=[1, 1, 1, 1]),
        _qlinear("dw2", "b", "c", 8, 1, 3, 3, group=8, pads=[1, 1, 1, 1]),
        _qlinear("grouped", "c", "d", 16, 4, 3, 3, group=2, strides=[2, 2], auto_pad="SAME_UPPER"),
    ]
    ci = helper.make_node("ConvInteger", ["d", "ci.W", "yz"], ["e"], name="ci")
    fl = helper.make_node("Conv", ["F", "fl.W"], ["f"], name="float_pw")
    return _model(nodes, [_u8("X", [1, 3, 20, 18]), _u8("F", [1, 16, 5, 5], TensorProto.FLOAT)],
                  [_u8("e", [1, 4, 5, 5], TensorProto.INT32), _u8("f", [1, 4, 5, 5], TensorProto.FLOAT)],
                  extra_nodes=[ci, fl],
                  extra_inits=[_init("ci.W", RNG.integers(-127, 128, (4, 16, 1, 1)).astype(np.int8)),
                               _init("fl.W", RNG.standard_normal((4, 16, 1, 1)).astype(np.float32))])


@pytest.fixture()
def qnet_path(tmp_path):
    path = tmp_path / "qnet.onnx"
    onnx.save(qnet(), path)
    return path


def test_qlinearconv_and_convinteger_become_u8s8_layers(qnet_path, tmp_path):
    cfg = tmp_path / "q.yaml"
    result = runner.invoke(app, ["import", str(qnet_path), "-o", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "ConvInteger" in result.output  # the note, on stderr
    config = load_config(cfg)
    by = {l.name: l for l in config.layers}
    assert list(by) == ["stem", "dw1", "grouped", "ci", "float_pw"]
    want = {  # (in, out, H, W, kernel, stride, padding t/b/l/r, groups, dtype)
        "stem": (3, 8, 20, 18, (3, 3), (2, 2), (0, 1, 1, 0), 1, "u8s8"),
        "dw1": (8, 8, 10, 9, (3, 3), (1, 1), (1, 1, 1, 1), 8, "u8s8"),
        "grouped": (8, 16, 10, 9, (3, 3), (2, 2), (0, 1, 1, 1), 2, "u8s8"),
        "ci": (16, 4, 5, 5, (1, 1), (1, 1), (0, 0, 0, 0), 1, "u8s8"),
        "float_pw": (16, 4, 5, 5, (1, 1), (1, 1), (0, 0, 0, 0), 1, "float32"),
    }
    for name, expected in want.items():
        s = by[name].spec()
        got = (s.in_channels, s.out_channels, s.height, s.width, s.kernel, s.stride, s.padding, s.groups, s.dtype)
        assert got == expected, name
    assert by["dw1"].count == 2 and by["dw1"].note == "also dw2"
    assert by["ci"].note.startswith("ConvInteger: int32 output, no requantization")
    assert not by["stem"].note and not by["float_pw"].note
    text = cfg.read_text()
    assert "dtype: float32" in text and text.count("dtype: u8s8") == 4  # mixed: each 8-bit layer says so
    assert "# note: 1 ConvInteger layer(s) (ci) have no output requantization" in text


def test_an_all_8bit_model_sets_u8s8_once_in_the_defaults(tmp_path):
    model = _model([_qlinear("only", "X", "y", 4, 3, 3, 3, pads=[1, 1, 1, 1])], [_u8("X", [1, 3, 6, 6])],
                   [_u8("y", [1, 4, 6, 6])])
    path = tmp_path / "one.onnx"
    onnx.save(model, path)
    text = render_config(import_onnx(path))
    assert "  dtype: u8s8\n" in text and text.count("u8s8") == 1
    assert parse_config(text).layers[0].spec().dtype == "u8s8"


def test_the_other_signedness_is_imported_as_u8s8_and_said(tmp_path):
    node = _qlinear("s8net", "X", "y", 4, 3, 1, 1, w_dtype=np.uint8)
    model = _model([node], [_u8("X", [1, 3, 4, 4], TensorProto.INT8)], [_u8("y", [1, 4, 4, 4], TensorProto.INT8)],
                   x_dtype=np.int8)
    path = tmp_path / "s8.onnx"
    onnx.save(model, path)
    layer = import_onnx(path).layers[0]
    assert layer.fields["dtype"] == "u8s8"
    assert "activations are int8" in layer.fields["note"] and "weights are uint8" in layer.fields["note"]


def test_onnxruntime_contrib_qlinearconv_is_listed_not_guessed(tmp_path):
    node, inits = _qlinear("nhwc", "X", "y", 4, 3, 3, 3, pads=[1, 1, 1, 1])
    node.domain = "com.microsoft"
    node.attribute.append(helper.make_attribute("channels_last", 1))
    plain = _qlinear("plain", "X2", "y2", 4, 3, 3, 3)
    graph = helper.make_graph([node, plain[0]], "mixed", [_u8("X", [1, 6, 6, 3]), _u8("X2", [1, 3, 6, 6])],
                              [_u8("y", [1, 6, 6, 4]), _u8("y2", [1, 4, 4, 4])],
                              initializer=inits + plain[1] + _shared())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    path = tmp_path / "contrib.onnx"
    onnx.save(model, path)
    result = import_onnx(path)
    assert [l.name for l in result.layers] == ["plain"]
    assert [(s.node, s.op_type) for s in result.skipped] == [("nhwc", "com.microsoft.QLinearConv")]
    assert "export the unoptimized model" in result.skipped[0].reason


@needs_extra("peers", "onnx", "onnxruntime")
@pytest.mark.skipif(saturates_without_vnni() is not None, reason=f"ONNX Runtime's MLAS: {saturates_without_vnni()}")
@pytest.mark.parametrize("node", ["stem", "grouped"])
def test_an_imported_layer_computes_what_onnxruntime_computes_for_its_node(qnet_path, node):
    """The imported spec, fed the node's own weights and a random input, gives ONNX Runtime's
    answer for the node (within 1 LSB): shapes, strides and SAME padding were read right."""
    import onnxruntime as ort

    model = onnx.load(qnet_path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    n = next(x for x in model.graph.node if x.name == node)
    layer = next(l for l in import_onnx(qnet_path).layers if l.name == node)
    spec = parse_config(render_config(import_onnx(qnet_path))).select_layers([node]).layers[0].spec("nchw")
    assert spec.dtype == "u8s8" and layer.fields["dtype"] == "u8s8"
    qw = QuantizedWeight(weight=inits[n.input[3]], w_scale=inits[n.input[4]], bias=inits[n.input[8]],
                         x_scale=float(inits["xs"]), x_zero=int(inits["xz"]), y_scale=float(inits["ys"]),
                         y_zero=int(inits["yz"]))
    x = RNG.integers(0, 256, spec.input_shape).astype(np.uint8)
    one = helper.make_graph([n], "one", [_u8(n.input[0], list(spec.input_shape))],
                            [_u8(n.output[0], list(spec.output_shape))],
                            initializer=[t for t in model.graph.initializer if t.name in n.input])
    session = ort.InferenceSession(helper.make_model(one, opset_imports=[helper.make_opsetid("", 17)])
                                   .SerializeToString(), providers=["CPUExecutionProvider"])
    y = session.run(None, {n.input[0]: x})[0]
    assert np.abs(y.astype(int) - reference(spec, x, qw).astype(int)).max() <= 1
