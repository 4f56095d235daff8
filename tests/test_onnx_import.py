"""`convbench import`: an ONNX model's convolutions as a config that runs as written.

The models are built here with onnx.helper (no downloads), with the shapes
that go wrong: asymmetric and SAME padding, depthwise, groups, dilation, a
rectangular kernel and input, a repeated shape, and convolutions convbench
cannot express (ConvTranspose, 3-D) that must be reported, not dropped.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from convbench.cli import app
from convbench.config import load_config
from convbench.onnx_import import OnnxImportError, import_onnx, render_config
from extras import have, needs_extra

pytestmark = needs_extra("peers", "onnx")
if have("peers", "onnx"):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

runner = CliRunner()
RNG = np.random.default_rng(0)


def _w(name: str, *shape: int):
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)


def _conv(name, x, y, w, **attrs):
    return helper.make_node("Conv", [x, w], [y], name=name, **attrs)


#: node name -> what the layer must be: (in, out, H, W, kernel, stride, pads t/b/l/r, dilation, groups)
EXPECTED = {
    "stem/conv": (3, 8, 20, 18, (3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 1),
    "block1/dw": (8, 8, 10, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8),
    "block1/dw_again": (8, 8, 10, 9, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8),
    "block1/pw": (8, 16, 10, 9, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "block2/grouped_dilated": (16, 16, 10, 9, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 2),
    "block2/same_upper": (16, 24, 10, 9, (3, 3), (2, 2), (0, 1, 1, 1), (1, 1), 1),
    "block2/rect": (24, 8, 5, 5, (1, 5), (1, 1), (0, 0, 2, 2), (1, 1), 1),
}


def odd_model(batch="N"):
    """A small network with every odd shape, plus a ConvTranspose and a 3-D conv."""
    nodes = [
        # ONNX pads are [top, left, bottom, right]
        _conv("stem/conv", "X", "a", "W1", strides=[2, 2], pads=[0, 1, 1, 0]),
        _conv("block1/dw", "a", "b", "W2", group=8, pads=[1, 1, 1, 1]),
        _conv("block1/dw_again", "b", "c", "W3", group=8, pads=[1, 1, 1, 1]),
        _conv("block1/pw", "c", "d", "W4"),
        _conv("block2/grouped_dilated", "d", "e", "W5", group=2, dilations=[2, 2], pads=[2, 2, 2, 2]),
        # SAME_UPPER on 10x9 with stride 2: H total pad 1 (0 top, 1 bottom), W total 2 (1, 1)
        _conv("block2/same_upper", "e", "f", "W6", strides=[2, 2], auto_pad="SAME_UPPER"),
        _conv("block2/rect", "f", "g", "W7", kernel_shape=[1, 5], pads=[0, 2, 0, 2]),
        helper.make_node("ConvTranspose", ["g", "WT"], ["up"], name="head/upsample", strides=[2, 2]),
        helper.make_node("Conv", ["V", "W3d"], ["v3"], name="video/conv3d"),
    ]
    inits = [_w("W1", 8, 3, 3, 3), _w("W2", 8, 1, 3, 3), _w("W3", 8, 1, 3, 3), _w("W4", 16, 8, 1, 1),
             _w("W5", 16, 8, 3, 3), _w("W6", 24, 16, 3, 3), _w("W7", 8, 24, 1, 5), _w("WT", 8, 4, 2, 2),
             _w("W3d", 4, 2, 3, 3, 3)]
    graph = helper.make_graph(
        nodes, "oddnet",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [batch, 3, 20, 18]),
         helper.make_tensor_value_info("V", TensorProto.FLOAT, [batch, 2, 4, 6, 6])],
        [helper.make_tensor_value_info("up", TensorProto.FLOAT, [batch, 4, 10, 10]),
         helper.make_tensor_value_info("v3", TensorProto.FLOAT, [batch, 4, 2, 4, 4])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture()
def model_path(tmp_path):
    path = tmp_path / "oddnet.onnx"
    onnx.save(odd_model(), path)
    return path


def _layers_by_node(config):
    """node name -> the config Layer it was imported into (the first node names the layer)."""
    out = {}
    for layer in config.layers:
        nodes = [layer.name] + (layer.note.removeprefix("also ").split(", ") if layer.note else [])
        for node in nodes:
            out[node] = layer
    return out


def test_import_reproduces_every_node_exactly_and_in_order(model_path, tmp_path):
    cfg = tmp_path / "odd.yaml"
    result = runner.invoke(app, ["import", str(model_path), "-o", str(cfg)])
    assert result.exit_code == 0, result.output
    config = load_config(cfg)
    by_node = _layers_by_node(config)
    assert set(by_node) == set(EXPECTED)
    for node, (cin, cout, h, w, kernel, stride, pads, dilation, groups) in EXPECTED.items():
        spec = by_node[node].spec()
        got = (spec.in_channels, spec.out_channels, spec.height, spec.width, spec.kernel, spec.stride,
               spec.padding, spec.dilation, spec.groups)
        assert got == (cin, cout, h, w, kernel, stride, pads, dilation, groups), node
        assert spec.batch == 1  # the symbolic batch, set to 1 and said so
    names = [layer.name for layer in config.layers]
    assert names == ["stem/conv", "block1/dw", "block1/pw", "block2/grouped_dilated", "block2/same_upper",
                     "block2/rect"]
    counts = {layer.name: layer.count for layer in config.layers}
    assert counts["block1/dw"] == 2 and sum(counts.values()) == 7
    classes = {layer.name: layer.layer_class for layer in config.layers}
    assert classes == {"stem/conv": "3x3", "block1/dw": "dw3x3", "block1/pw": "1x1",
                       "block2/grouped_dilated": "g3x3", "block2/same_upper": "3x3", "block2/rect": "1x5"}


def test_the_node_attributes_themselves_agree_with_the_config(model_path, tmp_path):
    # the expectations above are hand-written; here every attribute is read back from the model
    cfg = tmp_path / "odd.yaml"
    cfg.write_text(render_config(import_onnx(model_path)))
    by_node = _layers_by_node(load_config(cfg))
    model = onnx.load(model_path)
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.name not in by_node:
            continue
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        spec = by_node[node.name].spec()
        k, cg, kh, kw = inits[node.input[1]]
        assert (spec.out_channels, spec.channels_per_group, spec.kernel) == (k, cg, (kh, kw))
        assert list(spec.stride) == list(a.get("strides", [1, 1]))
        assert list(spec.dilation) == list(a.get("dilations", [1, 1]))
        assert spec.groups == a.get("group", 1)
        if "pads" in a:
            top, left, bottom, right = a["pads"]
            assert spec.padding == (top, bottom, left, right), node.name


@needs_extra("peers", "onnxruntime")
def test_same_padding_matches_what_onnxruntime_computes(model_path, tmp_path):
    import onnxruntime as ort
    # the SAME_UPPER node alone, against the explicit pads convbench wrote for it
    layer = {l.name: l for l in load_config(_write(tmp_path, import_onnx(model_path))).layers}["block2/same_upper"]
    spec = layer.spec()
    x = RNG.standard_normal((1, 16, 10, 9)).astype(np.float32)
    w = RNG.standard_normal((24, 16, 3, 3)).astype(np.float32)
    outs = []
    for attrs in ({"auto_pad": "SAME_UPPER"},
                  {"pads": [spec.pad_top, spec.pad_left, spec.pad_bottom, spec.pad_right]}):
        g = helper.make_graph([_conv("c", "X", "Y", "W", strides=[2, 2], **attrs)], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 16, 10, 9])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(w, "W")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        outs.append(s.run(None, {"X": x})[0])
    assert outs[0].shape == outs[1].shape == spec.output_shape
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)


def _write(tmp_path, result):
    path = tmp_path / "imported.yaml"
    path.write_text(render_config(result))
    return path


def test_unexpressible_layers_are_reported_on_stderr_and_in_the_config(model_path, tmp_path):
    cfg = tmp_path / "odd.yaml"
    result = runner.invoke(app, ["import", str(model_path), "-o", str(cfg)])
    assert result.exit_code == 0
    text = cfg.read_text()
    header = text[: text.index("name:")]
    for where in (result.output, header):
        assert "head/upsample (ConvTranspose)" in where
        assert "video/conv3d (Conv): 3-D convolution" in where
    assert "symbolic batch" in header
    assert yaml.safe_load(text)["layers"]  # the comment is a comment


def test_written_config_runs_quick(model_path, tmp_path):
    cfg = tmp_path / "odd.yaml"
    assert runner.invoke(app, ["import", str(model_path), "-o", str(cfg)]).exit_code == 0
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(cfg), "--quick", "-a", "im2col,indirect", "-o", str(out),
                                 "--no-isolation"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 6 * 2 * 2  # layers x layouts x algorithms
    assert set(summary["status"]) == {"ok"}, summary[["layer", "algorithm", "status", "reason"]]


def test_batch_and_input_shape_fix_symbolic_dimensions(tmp_path):
    w = _w("W", 4, 3, 3, 3)
    g = helper.make_graph([_conv("c", "X", "Y", "W", pads=[1, 1, 1, 1])], "dyn",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], initializer=[w])
    path = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    unresolved = import_onnx(path)
    assert not unresolved.layers and "dynamic shape" in unresolved.skipped[0].reason
    assert "--input-shape" in unresolved.skipped[0].reason
    fixed = import_onnx(path, input_shapes=["X:2,3,16,12"])
    assert fixed.layers[0].fields == {"batch": 2, "in_channels": 3, "out_channels": 4, "height": 16, "width": 12,
                                      "kernel": 3, "padding": 1, "layer_class": "3x3"}
    assert import_onnx(path, input_shapes=["1,3,8,8"], ).layers[0].fields["size"] == 8
    cfg = tmp_path / "dyn.yaml"
    result = runner.invoke(app, ["import", str(path), "-o", str(cfg), "--batch", "4", "--input-shape", "X:1,3,8,8"])
    assert result.exit_code == 0, result.output
    assert load_config(cfg).layers[0].spec().batch == 1  # --input-shape wins for the input it names
    # --batch alone on the odd model
    model = tmp_path / "odd.onnx"
    onnx.save(odd_model(), model)
    assert all(l.fields["batch"] == 4 for l in import_onnx(model, batch=4).layers)


@pytest.mark.parametrize("args, message", [
    (["--input-shape", "Y:1,3,8,8"], "not an input of the model"),
    (["--input-shape", "1,3,x"], "--input-shape must look like"),
    (["--input-shape", "X:1,3,8"], "has 4 dimensions"),
    (["--batch", "0"], "--batch must be"),
])
def test_bad_input_shapes_are_exit_2(tmp_path, args, message):
    g = helper.make_graph([_conv("c", "X", "Y", "W")], "one",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], initializer=[_w("W", 2, 3, 3, 3)])
    path = tmp_path / "one.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    result = runner.invoke(app, ["import", str(path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def _bad_file(tmp_path, kind):
    path = tmp_path / "model.onnx"
    if kind == "missing":
        return tmp_path / "nope.onnx", "no such file"
    if kind == "folder":
        path.mkdir()
        return path, "not a file"
    if kind == "text":
        path.write_text("this is not a model\n" * 10)
        return path, "not an ONNX model"
    if kind == "random":
        path.write_bytes(np.random.default_rng(1).bytes(4096))
        return path, "not an ONNX model"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "not an ONNX model"
    if kind == "unreadable":
        onnx.save(odd_model(), path)
        path.chmod(0)
        return path, "cannot read"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "random", "empty", "unreadable"])
def test_bad_model_files_are_one_line_exit_2(tmp_path, kind):
    import os

    path, message = _bad_file(tmp_path, kind)
    if kind == "unreadable" and os.access(path, os.R_OK):
        pytest.skip("running as root: the file stays readable")
    result = runner.invoke(app, ["import", str(path), "-o", str(tmp_path / "out.yaml")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert str(path) in result.output
    assert not (tmp_path / "out.yaml").exists()


def test_a_model_without_2d_convolutions_writes_nothing(tmp_path):
    g = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "relu",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(g), path)
    result = runner.invoke(app, ["import", str(path), "-o", str(tmp_path / "o.yaml")])
    assert result.exit_code == 2 and "no 2-D convolution" in result.output
    assert not (tmp_path / "o.yaml").exists()


def test_existing_output_is_not_overwritten_without_force(model_path, tmp_path):
    cfg = tmp_path / "odd.yaml"
    cfg.write_text("keep me\n")
    result = runner.invoke(app, ["import", str(model_path), "-o", str(cfg)])
    assert result.exit_code == 2 and "--force" in result.output
    assert cfg.read_text() == "keep me\n"
    assert runner.invoke(app, ["import", str(model_path), "-o", str(cfg), "--force"]).exit_code == 0


# -- issue 17: imported models stay in their folder -------------------------------------------


def _external_model(tmp_path, location):
    """A model whose weight claims to live at ``location`` (relative to the model)."""
    model = odd_model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", location
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    path = folder / "ext.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_the_model_folder_is_refused(tmp_path, location):
    path = _external_model(tmp_path, location)
    result = runner.invoke(app, ["import", str(path), "-o", str(tmp_path / "o.yaml")])
    assert result.exit_code == 2, result.output
    assert "outside the model's folder" in result.output and location in result.output
    assert "Traceback" not in result.output


def test_external_data_inside_the_folder_is_fine_and_never_read(tmp_path):
    path = _external_model(tmp_path, "weights/w1.bin")  # it does not even exist: shapes need no data
    result = import_onnx(path)
    assert result.layers and result.layers[0].fields["in_channels"] == 3


def test_a_model_over_the_size_limit_needs_max_size(model_path, tmp_path):
    size = model_path.stat().st_size
    result = runner.invoke(app, ["import", str(model_path), "--max-size", str(size - 1)])
    assert result.exit_code == 2 and "--max-size" in result.output and "over the limit" in result.output
    result = runner.invoke(app, ["import", str(model_path), "--max-size", str(size)])
    assert result.exit_code == 0, result.output
    with pytest.raises(OnnxImportError, match="over the limit"):
        import_onnx(model_path, max_size=100)
    assert runner.invoke(app, ["import", str(model_path), "--max-size", "lots"]).exit_code == 2
