"""Configs: the shipped ones expand as documented; bad ones fail with a message
that names the file, the layer or grid, the field, and the nearest valid key."""

from collections import Counter
from pathlib import Path

import pytest
import yaml

from convbench.config import ConfigError, dump_config, load_config, parse_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GOOD_LAYER = "{name: a, channels: 8, size: 10, kernel: 3, padding: 1}"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert config.layers
    for layer in config.layers:
        for spec in layer.variants():
            assert spec.flops > 0


def test_default_sweep_is_the_smoke_config():
    default, smoke = load_config(None), load_config(CONFIGS / "smoke.yaml")
    assert [l.to_yaml_dict() for l in default.layers] == [l.to_yaml_dict() for l in smoke.layers]
    assert default.timing == smoke.timing


# size, kind, stride, in, out, count: the 19 shapes of MobileNet v1 (issue text)
MOBILENET = [
    (224, "3x3", 2, 3, 32, 1), (112, "dw", 1, 32, 32, 1), (112, "1x1", 1, 32, 64, 1),
    (112, "dw", 2, 64, 64, 1), (56, "1x1", 1, 64, 128, 1), (56, "dw", 1, 128, 128, 1),
    (56, "1x1", 1, 128, 128, 1), (56, "dw", 2, 128, 128, 1), (28, "1x1", 1, 128, 256, 1),
    (28, "dw", 1, 256, 256, 1), (28, "1x1", 1, 256, 256, 1), (28, "dw", 2, 256, 256, 1),
    (14, "1x1", 1, 256, 512, 1), (14, "dw", 1, 512, 512, 5), (14, "1x1", 1, 512, 512, 5),
    (14, "dw", 2, 512, 512, 1), (7, "1x1", 1, 512, 1024, 1), (7, "dw", 1, 1024, 1024, 1),
    (7, "1x1", 1, 1024, 1024, 1),
]


def test_mobilenet_has_the_19_distinct_shapes_in_network_order():
    config = load_config(CONFIGS / "mobilenet.yaml")
    assert len(config.layers) == 19
    for layer, (size, kind, stride, cin, cout, count) in zip(config.layers, MOBILENET):
        s = layer.spec()
        assert (s.height, s.width, s.stride, s.in_channels, s.out_channels) == (size, size, (stride, stride), cin, cout)
        assert layer.count == count
        assert s.batch == 1
        if kind == "1x1":
            assert s.kernel == (1, 1) and s.padding == (0, 0, 0, 0) and s.groups == 1
        else:
            assert s.kernel == (3, 3) and s.padding == (1, 1, 1, 1)
            assert s.groups == (cin if kind == "dw" else 1)
    assert sum(l.count for l in config.layers) == 27
    total = sum(l.count * l.spec().flops for l in config.layers)
    assert 1.1e9 < total < 1.2e9  # 569M multiply-adds


@pytest.mark.parametrize("name, layers, convs, gflop", [("mobilenet_v2", 30, 52, 0.6), ("resnet50", 23, 53, 8.2)])
def test_network_configs_count_every_conv_once(name, layers, convs, gflop):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert len(config.layers) == layers
    assert sum(l.count for l in config.layers) == convs
    shapes = [(tuple(sorted(l.shape.items()))) for l in config.layers]
    assert len(set(shapes)) == len(shapes), "a shape is listed twice instead of counted"
    total = sum(l.count * l.spec().flops for l in config.layers) / 1e9
    assert total == pytest.approx(gflop, rel=0.03)


def test_paper_has_six_layers_per_class_from_networks_and_grids():
    config = load_config(CONFIGS / "paper.yaml")
    by_class = Counter(l.layer_class for l in config.layers)
    assert set(by_class) == {"1x1/s1", "1x1/s2", "3x3", "5x5"}
    for cls in by_class:
        real = [l for l in config.layers if l.layer_class == cls and l.network != "grid"]
        grid = [l for l in config.layers if l.layer_class == cls and l.network == "grid"]
        assert len(real) >= 6 and grid, cls
    three = [l.spec() for l in config.layers if l.layer_class == "3x3"]
    assert {s.padding[0] for s in three} == {0, 1} and {s.stride[0] for s in three} == {1, 2}
    five = [l.spec() for l in config.layers if l.layer_class == "5x5"]
    assert {s.padding[0] for s in five} == {0, 2}
    assert all(l.spec().stride == (2, 2) for l in config.layers if l.layer_class == "1x1/s2")


def test_sweep_grid_expands_cartesian_with_readable_names():
    config = parse_config(
        "defaults: {layout: [nchw, nhwc], dtype: [float32, float64]}\n"
        "sweeps:\n"
        "  - {name: g, layer_class: c, kernel: 3, grid: {stride: [1, 2], channels: [4, 8], size: [6]}}\n",
        "t.yaml",
    )
    assert [l.name for l in config.layers] == ["g/s1_c4_hw6", "g/s1_c8_hw6", "g/s2_c4_hw6", "g/s2_c8_hw6"]
    assert all(l.layer_class == "c" for l in config.layers)
    assert len(config.layers[0].variants()) == 4  # 2 layouts x 2 dtypes


def test_grid_drop_invalid_skips_combinations_that_do_not_fit():
    text = "sweeps:\n  - {name: g, kernel: 5, channels: 4, grid: {size: [3, 8]}, drop_invalid: %s}\n"
    assert [l.name for l in parse_config(text % "true", "t.yaml").layers] == ["g/hw8"]
    with pytest.raises(ConfigError, match=r"grid 'g' \(sweeps\[0\]\) at \{'size': 3\}"):
        parse_config(text % "false", "t.yaml")


def test_depthwise_and_shorthands():
    layer = parse_config("layers:\n  - {name: d, channels: 16, size: 7, kernel: 3, depthwise: true}\n").layers[0]
    s = layer.spec()
    assert (s.in_channels, s.out_channels, s.groups, s.height, s.width) == (16, 16, 16, 7, 7)


def test_config_as_run_round_trips():
    config = load_config(CONFIGS / "paper.yaml")
    from convbench.timing import TimingSettings

    text = dump_config(config.as_run(["im2col"], [1, 2], TimingSettings()), "# header\n")
    again = parse_config(text, "as_run.yaml")
    assert [l.to_yaml_dict() for l in again.layers] == [l.to_yaml_dict() for l in config.layers]
    assert again.threads == [1, 2]
    assert yaml.safe_load(text)["algorithms"] == ["im2col"]


def test_select_layers_by_glob():
    config = load_config(CONFIGS / "mobilenet.yaml")
    assert [l.name for l in config.select_layers(["conv_dw_1*"]).layers] == ["conv_dw_1", "conv_dw_12", "conv_dw_13"]
    assert len(config.select_layers(["conv1", "conv_pw_13"]).layers) == 2
    with pytest.raises(ConfigError, match="no layer matches 'nope'"):
        config.select_layers(["nope"])


def test_unknown_algorithm_suggests_the_nearest():
    config = parse_config(f"algorithms: [indirekt]\nlayers:\n  - {GOOD_LAYER}\n", "t.yaml")
    with pytest.raises(ConfigError, match="unknown algorithm 'indirekt'. Did you mean 'indirect'"):
        config.algorithm_names()


def test_baseline_is_always_among_the_algorithms():
    config = parse_config(f"algorithms: [naive]\nbaseline: im2col\nlayers:\n  - {GOOD_LAYER}\n", "t.yaml")
    assert config.algorithm_names() == ["im2col", "naive"]


# (config text, fragments the message must contain)
BAD_CONFIGS = [
    ("layers:\n  - {name: conv1, channels: 8, size: 10, kernal: 3}\n",
     ["bad.yaml, line 2", "layer 'conv1' (layers[0])", "unknown field 'kernal'", "Did you mean 'kernel'?"]),
    ("layrs:\n  - " + GOOD_LAYER + "\n", ["bad.yaml, line 1", "unknown field 'layrs'", "Did you mean 'layers'?"]),
    ("defaults: {batc: 2}\nlayers:\n  - " + GOOD_LAYER + "\n", ["defaults", "unknown field 'batc'", "'batch'"]),
    ("timing: {min_sample: 3}\nlayers:\n  - " + GOOD_LAYER + "\n", ["timing", "'min_sample'", "'min_samples'"]),
    ("layers:\n  - {name: a, channels: 8, size: 10, kernel: 0}\n", ["layer 'a'", "field 'kernel'", "int >= 1", "got 0"]),
    ("layers:\n  - name: a\n    channels: 8\n    size: 10\n    kernel: [3, 3, 3]\n", ["line 5", "field 'kernel'"]),
    ("layers:\n  - {name: a, channels: 8, size: 10, kernel: 3, padding: [1, 2, 3]}\n", ["field 'padding'", "(top, bottom, left, right)"]),
    ("layers:\n  - {name: a, channels: 8, size: 10, kernel: 3, layout: nhcw}\n", ["field 'layout'", "Did you mean 'nhwc'"]),
    ("layers:\n  - {name: a, channels: 8, size: 10, kernel: 3, dtype: float16}\n", ["field 'dtype'", "float32, float64"]),
    ("layers:\n  - {name: a, channels: 8, size: 10, kernel: 3, depthwise: 2}\n", ["field 'depthwise'", "true or false"]),
    ("layers:\n  - {name: a, channels: 8, size: 2, kernel: 5}\n", ["layer 'a'", "output_height", "does not fit"]),
    ("layers:\n  - {name: a, in_channels: 6, out_channels: 8, groups: 4, size: 10, kernel: 3}\n", ["layer 'a'", "divisible by 'groups'"]),
    ("layers:\n  - {name: a, channels: 8, size: 10}\n", ["layer 'a'", "missing field(s) kernel"]),
    ("layers:\n  - {name: a, channels: 8, kernel: 3}\n", ["layer 'a'", "height, width", "'size'"]),
    ("layers:\n  - {channels: 8, size: 10, kernel: 3}\n", ["layers[0]", "field 'name' is required"]),
    ("layers:\n  - " + GOOD_LAYER + "\n  - " + GOOD_LAYER + "\n", ["layer name 'a' is used twice", "layers[0] and layers[1]"]),
    ("sweeps:\n  - {name: g, kernel: 3, grid: {strid: [1], size: [4], channels: [2]}}\n", ["grid 'g' (sweeps[0])", "unknown field 'strid'", "'stride'"]),
    ("sweeps:\n  - {name: g, kernel: 3, grid: {stride: [1, 0], size: [4], channels: [2]}}\n", ["grid 'g'", "'grid' field 'stride'", "got 0"]),
    ("threads: [0]\nlayers:\n  - " + GOOD_LAYER + "\n", ["field 'threads'", "got 0"]),
    ("seed: -1\nlayers:\n  - " + GOOD_LAYER + "\n", ["field 'seed'", "greater than or equal to 0"]),
    ("algorithms: 3\nlayers:\n  - " + GOOD_LAYER + "\n", ["field 'algorithms'", "'all' or a list"]),
    ("name: x\n", ["no 'layers' and no 'sweeps'"]),
    ("layers: [\n  {name: a\n", ["bad.yaml, line 3, column 1", "malformed YAML"]),
    ("layers:\n\t- a\n", ["malformed YAML", "line 2"]),
    ("", ["bad.yaml: the config is empty"]),
    ("- a\n- b\n", ["must be a mapping"]),
]


@pytest.mark.parametrize("text, fragments", BAD_CONFIGS, ids=[f"bad{i}" for i in range(len(BAD_CONFIGS))])
def test_bad_config_message(text, fragments):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_missing_config_file_suggests_a_shipped_one(tmp_path):
    with pytest.raises(ConfigError, match="no such config file. Did you mean 'mobilenet'"):
        load_config("mobilnet")
    (tmp_path / "mine.yaml").write_text("layers:\n  - " + GOOD_LAYER + "\n")
    with pytest.raises(ConfigError, match="Did you mean 'mine.yaml'"):
        load_config(tmp_path / "mien.yaml")


def test_a_shipped_config_is_found_by_name():
    assert load_config("smoke").name == "smoke"
