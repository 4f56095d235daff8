"""ConvSpec: normalisation, derived sizes and the errors that name the field."""

import numpy as np
import pytest

from convbench import ConvSpec
from convbench.spec import check_field


def spec(**kw):
    base = dict(batch=1, in_channels=3, out_channels=32, height=224, width=224,
                kernel=3, stride=2, padding=1, dilation=1, groups=1, layout="nhwc", dtype="float32")
    base.update(kw)
    return ConvSpec(**base)


def test_mobilenet_first_layer_derived_sizes():
    s = spec()
    assert (s.output_height, s.output_width) == (112, 112)
    assert s.input_shape == (1, 224, 224, 3)
    assert s.output_shape == (1, 112, 112, 32)
    assert s.weight_shape == (32, 3, 3, 3)
    assert s.flops == 2 * 112 * 112 * 32 * 3 * 9


def test_nchw_shapes_and_grouped_weight_shape():
    s = spec(layout="nchw", in_channels=8, out_channels=4, groups=2)
    assert s.input_shape == (1, 8, 224, 224)
    assert s.output_shape == (1, 4, 112, 112)
    assert s.weight_shape == (4, 4, 3, 3)
    assert s.flops == 2 * 112 * 112 * 4 * 4 * 9


def test_padding_forms_normalise_to_top_bottom_left_right():
    assert spec(padding=2).padding == (2, 2, 2, 2)
    assert spec(padding=(1, 2)).padding == (1, 1, 2, 2)
    assert spec(padding=(0, 1, 2, 3)).padding == (0, 1, 2, 3)


def test_asymmetric_everything_output_size():
    s = spec(height=10, width=7, kernel=(3, 2), stride=(2, 3), padding=(0, 1, 2, 0), dilation=(2, 1))
    # OH = (10 + 0 + 1 - 2*(3-1) - 1) // 2 + 1 = 4 ; OW = (7 + 2 + 0 - 1*(2-1) - 1) // 3 + 1 = 3
    assert (s.output_height, s.output_width) == (4, 3)
    assert (s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.dilation_h) == (3, 2, 2, 3, 2)


def test_spec_is_read_only():
    with pytest.raises(Exception):
        spec().height = 3


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("batch", 0, "'batch' parameter of ConvSpec must be an int >= 1. Got 0"),
        ("in_channels", -3, "'in_channels'"),
        ("height", 2.5, "'height'"),
        ("kernel", 0, "'kernel' parameter of ConvSpec must be an int >= 1 or a pair"),
        ("stride", -2, "'stride' parameter of ConvSpec must be an int >= 1 or a pair of them. Got -2"),
        ("dilation", (1, 0), "'dilation'"),
        ("padding", -1, "'padding'"),
        ("padding", (1, 2, 3), "'padding'"),
        ("layout", "nwhc", "'layout' parameter of ConvSpec must be one of 'nchw', 'nhwc'"),
        ("dtype", "float16", "'dtype' parameter of ConvSpec must be one of 'float32', 'float64'"),
        ("groups", 2, "'in_channels' parameter of ConvSpec (3) must be divisible by 'groups' (2)"),
    ],
)
def test_invalid_field_raises_value_error_naming_it(field, value, message):
    with pytest.raises(ValueError) as info:
        spec(**{field: value})
    assert message in str(info.value)


def test_output_smaller_than_one_is_rejected_with_sizes():
    with pytest.raises(ValueError, match="output_height = 0 < 1"):
        spec(height=2, width=2, kernel=3, padding=0, stride=1)


def test_out_channels_must_divide_by_groups():
    with pytest.raises(ValueError, match="'out_channels'"):
        spec(in_channels=4, out_channels=6, groups=4)


def test_output_smaller_than_one_names_the_fields_that_meet():
    with pytest.raises(ValueError) as info:
        spec(height=9, width=4, kernel=3, dilation=(1, 2), padding=0)
    message = str(info.value)
    assert "output_width = 0 < 1" in message
    assert "'kernel' 3 with 'dilation' 2 spans 5 and does not fit the 'width' 4 plus 'padding' 0+0" in message


@pytest.mark.parametrize("field, value", [("stride", -2), ("groups", 0), ("padding", (1, -1)),
                                          ("kernel", (3, 3, 3)), ("dtype", {"x": 1}), ("layout", None)])
def test_one_field_is_checked_alone_with_the_same_message_as_the_spec(field, value):
    with pytest.raises(ValueError) as alone:
        check_field(field, value)
    with pytest.raises(ValueError) as whole:
        spec(**{field: value})
    assert str(alone.value) == str(whole.value)
    assert f"The '{field}' parameter of ConvSpec must be" in str(alone.value)


def test_fields_are_normalised_from_numpy_ints():
    s = spec(height=np.int64(9), kernel=np.int32(3), padding=(np.int64(1), 2))
    assert type(s.height) is int and s.kernel == (3, 3) and s.padding == (1, 1, 2, 2)
    assert check_field("stride", [2, 1]) == (2, 1) and check_field("dtype", np.float64) == "float64"
