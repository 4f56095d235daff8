"""The zoo built from the onnx wheel's nine graphs: it agrees with onnx's own shape inference,
and a shape several networks share is one layer credited to each."""

from __future__ import annotations

import collections

import pytest
from extras import needs_extra

from convbench.config import parse_config
from convbench.zoo import NETWORKS, ZooError, build_zoo, models_folder, parse_credits, pick_networks

pytestmark = needs_extra("peers", "onnx")


@pytest.fixture(scope="module")
def zoo():
    return build_zoo()


@pytest.fixture(scope="module")
def specs(zoo):
    config = parse_config(zoo.config_text(algorithms=["im2col"]), "<zoo>")
    return {layer.name: (layer.spec(), parse_credits(layer.network), layer.count) for layer in config.layers}


def onnx_convolutions(path):
    """Every Conv node's shapes as onnx's own shape inference gives them:
    (C, K, H, W, R, S, groups, OH, OW) and its direct FLOPs."""
    import onnx
    from onnx import helper

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), data_prop=True)
    graph = model.graph
    dims = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
            for vi in [*graph.input, *graph.value_info, *graph.output]}
    dims.update({t.name: list(t.dims) for t in graph.initializer})
    out = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        (n, c, h, w), (k, cg, r, s), (_, k_out, oh, ow) = (dims[node.input[0]], dims[node.input[1]],
                                                          dims[node.output[0]])
        group = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "group"), 1)
        assert k_out == k and cg * group == c
        out.append(((c, k, h, w, r, s, group, oh, ow), 2 * n * k * oh * ow * cg * r * s))
    return out


def test_every_network_agrees_with_onnx_shape_inference(zoo, specs):
    folder = models_folder()
    for net in NETWORKS:
        theirs = onnx_convolutions(folder / net.file)
        info = next(i for i in zoo.networks if i.key == net.key)
        assert info.convs == len(theirs), net.key
        assert info.gflop * 1e9 == pytest.approx(sum(f for _, f in theirs), rel=1e-9), net.key
        ours = collections.Counter()
        for name in info.layers:
            spec, credits, _ = specs[name]
            key = (spec.in_channels, spec.out_channels, spec.height, spec.width, spec.kernel_h, spec.kernel_w,
                   spec.groups, spec.output_height, spec.output_width)
            ours[key] += credits[net.key]
        assert ours == collections.Counter(shape for shape, _ in theirs), net.key


def test_the_nine_networks_are_401_convolutions_in_216_shapes(zoo):
    assert [n.key for n in zoo.networks] == [n.key for n in NETWORKS]
    assert sum(n.convs for n in zoo.networks) == 401
    assert len(zoo.layers) == 216 and sum(layer.count for layer in zoo.layers) == 401
    assert len({layer.name for layer in zoo.layers}) == 216
    assert all(not n.not_imported for n in zoo.networks)
    gflop = {n.key: n.gflop for n in zoo.networks}
    assert min(gflop.values()) == pytest.approx(0.248, abs=0.01) and max(gflop.values()) == pytest.approx(39.0, abs=0.1)


def test_a_shared_shape_is_one_layer_credited_to_each_network(zoo, specs):
    assert len(zoo.shared) == 9
    stem = [layer for layer in zoo.layers if layer.fields.get("kernel") == 7 and layer.fields.get("in_channels") == 3
            and layer.fields.get("out_channels") == 64]
    assert len(stem) == 1
    assert stem[0].credits == {"inception_v1": 1, "inception_v2": 1, "resnet50": 1, "densenet121": 1}
    for name, (_, credits, count) in specs.items():
        assert sum(credits.values()) == count, name  # the row's count is every network's occurrences
    for info in zoo.networks:  # each network's credits add up to its convolutions
        assert sum(specs[name][1][info.key] for name in info.layers) == info.convs


def test_choosing_networks_keeps_only_their_shapes():
    small = build_zoo(pick_networks("SqueezeNet, inception-v1"))
    assert [n.key for n in small.networks] == ["inception_v1", "squeezenet"]
    assert {k for layer in small.layers for k in layer.credits} == {"inception_v1", "squeezenet"}
    assert len(small.shared) == 2 and sum(layer.count for layer in small.layers) == 57 + 26


def test_an_unknown_network_is_named_with_the_choices():
    with pytest.raises(ZooError, match=r"unknown network 'resnet51'\. Did you mean 'resnet50'\?.*shufflenet"):
        pick_networks("resnet51")


def test_without_onnx_the_message_names_the_peers_extra(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ZooError, match=r"onnx is not installed.*peers"):
        models_folder()
