"""direct-blocked: the channel-blocked direct convolution's kernel refuses arrays it would
read or write out of bounds, tiles whole rows, and needs no workspace of its own."""

from __future__ import annotations

import numpy as np
import pytest

import convbench
from convbench.kernels.configs import active_config
from convbench.kernels.depthwise_blocked import depthwise_blocked
from convbench.kernels.direct_blocked import (block_channels, direct_blocked, plan_direct_blocked,
                                             row_tiles, tile_shape)


@pytest.mark.parametrize("ow, most, want", [(56, 14, (14, 56)), (7, 14, (7, 7)), (55, 14, (14, 56)),
                                            (29, 14, (10, 30)), (1, 14, (1, 1))])
def test_row_tiles_cover_the_row_with_balanced_tiles(ow, most, want):
    pixels, padded = row_tiles(ow, most)
    assert (pixels, padded) == want and padded >= ow and padded - ow < -(-ow // most)


def _arrays(hp=6, wp=6, oh=4, ow=4, cb=1, kb=1, dtype=np.float32):
    w = block_channels(active_config().vector_bytes, dtype)
    x = np.zeros((1, 1, cb, hp, wp, w), dtype)
    wt = np.zeros((1, kb, cb, 3, 3, w, w), dtype)
    out = np.zeros((1, 1, kb, oh, ow, w), dtype)
    return x, wt, out


def test_the_kernel_refuses_arrays_it_would_overrun():
    vb = active_config().vector_bytes
    x, w, out = _arrays()
    direct_blocked(x, w, out, (3, 3), (1, 1), (1, 1), 4, vb)  # exactly fits
    with pytest.raises(ValueError, match="reads past the padded input"):
        direct_blocked(*_arrays(hp=5), (3, 3), (1, 1), (1, 1), 4, vb)
    with pytest.raises(ValueError, match="shapes disagree"):
        direct_blocked(x, w, out, (5, 5), (1, 1), (1, 1), 4, vb)
    with pytest.raises(ValueError, match="blocks of"):
        direct_blocked(x.astype(np.float64), w, out, (3, 3), (1, 1), (1, 1), 4, vb)


def test_a_planned_call_refuses_arrays_other_than_those_it_was_checked_for():
    vb = active_config().vector_bytes
    x, w, out = _arrays()
    run = plan_direct_blocked(x.shape, x.dtype, w, out.shape, (3, 3), (1, 1), (1, 1), 4, vb)
    run(x, out)
    shorter, _, _ = _arrays(hp=5)  # the kernel's addresses were checked for 6 rows, not 5
    for args in [(shorter, out), (x, out[:, :, :, :2]), (x.astype(np.float64), out), (np.asfortranarray(x), out),
                 (x, out.transpose(0, 1, 2, 4, 3, 5))]:
        with pytest.raises(ValueError, match="planned for"):
            run(*args)


@pytest.mark.parametrize("pixels, blocks", [(3, 2), (5, 1)])
def test_rows_of_any_width_end_in_shorter_tiles_and_tiles_of_several_blocks_hold_their_own_channels(pixels, blocks):
    vb = active_config().vector_bytes
    rng = np.random.default_rng(1)
    x, w, out = _arrays(hp=7, wp=9, oh=5, ow=7, cb=2, kb=2)  # rows of 7: 3 + 3 + 1, or 5 + 2
    x[...] = rng.uniform(-1, 1, x.shape)
    w[...] = rng.uniform(-1, 1, w.shape)
    # float64 direct convolution of the blocked arrays: out[kb, y, x, k] = sum x[cb, y+r, x+s, c] w[kb, cb, r, s, c, k]
    win = np.lib.stride_tricks.sliding_window_view(x[0, 0].astype(np.float64), (3, 3), axis=(1, 2))[:, :5, :7]
    want = np.einsum("byxcrs,kbrsco->kyxo", win, w[0].astype(np.float64))
    # the same weights, tiles of `blocks` output blocks: (G, KB / B, CB, R, S, CW, B * W)
    g, kb, cb, kh, kw, cw, width = w.shape
    wt = np.ascontiguousarray(w.reshape(g, kb // blocks, blocks, cb, kh, kw, cw, width)
                              .transpose(0, 1, 3, 4, 5, 6, 2, 7).reshape(g, kb // blocks, cb, kh, kw, cw, -1))
    direct_blocked(x, wt, out, (3, 3), (1, 1), (1, 1), pixels, vb)
    np.testing.assert_allclose(out[0, 0], want, rtol=1e-4, atol=1e-4)


def test_the_kernel_skips_the_taps_of_zero_rows_and_columns_it_is_told_of_and_refuses_others():
    vb = active_config().vector_bytes
    x, w, out = _arrays(wp=8, ow=6)
    rng = np.random.default_rng(0)
    x[...] = rng.uniform(-1, 1, x.shape)
    w[...] = rng.uniform(-1, 1, w.shape)
    x[:, :, :, :1] = x[:, :, :, -2:] = 0  # a padded image: one zero row on top, two below,
    x[:, :, :, :, :1] = x[:, :, :, :, -1:] = 0  # a zero column either side
    image = dict(rows=(1, x.shape[3] - 2), cols=(1, x.shape[4] - 1))
    direct_blocked(x, w, out, (3, 3), (1, 1), (1, 1), 4, vb)
    every = out.copy()
    # 4-pixel tiles on 4 rows: a band, whose edge pixels are tiles down a column
    direct_blocked(x, w, out, (3, 3), (1, 1), (1, 1), 4, vb, **image)
    np.testing.assert_allclose(out, every, rtol=1e-5, atol=1e-5)
    x[:, :, :, :, 0] = x[:, :, :, :, -1] = 1  # told they are padding, the columns are not read
    direct_blocked(x, w, out, (3, 3), (1, 1), (1, 1), 4, vb, **image)
    np.testing.assert_allclose(out, every, rtol=1e-5, atol=1e-5)
    # 5-pixel tiles: no band of 5 rows, so every tile is along one row, and skips its padding rows
    x[:, :, :, 0] = 1
    direct_blocked(x, w, out, (3, 3), (1, 1), (1, 1), 5, vb, **image)
    np.testing.assert_allclose(out, every, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="are not those of the"):
        direct_blocked(x, w, out, (3, 3), (1, 1), (1, 1), 4, vb, rows=(0, x.shape[3] + 1))
    with pytest.raises(ValueError, match="are not those of the"):
        direct_blocked(x, w, out, (3, 3), (1, 1), (1, 1), 4, vb, cols=(2, 1))


def test_it_declares_no_workspace_and_its_phases_are_the_layout_copies_around_the_kernel():
    algo = convbench.get_algorithm("direct-blocked")
    spec = convbench.ConvSpec(batch=1, in_channels=4, out_channels=4, height=6, width=6, kernel=3, padding=1,
                              layout="nhwc")
    assert algo.workspace_bytes(spec) == 0
    x, w = spec.random_inputs(0)
    call = algo.prepare(spec, w)
    assert call.phases == ("pack", "gemm", "transform_out")
    assert convbench.relative_error(call(x), convbench.reference(spec, x, w)) < 1e-5


def _dw_arrays(hp=6, wp=6, oh=4, ow=4, gb=1, mult=1, dtype=np.float32):
    w = block_channels(active_config().vector_bytes, dtype)
    return (np.zeros((1, gb, hp, wp, w), dtype), np.zeros((gb, mult, 3, 3, w), dtype),
            np.zeros((1, gb, mult, oh, ow, w), dtype))


def test_the_depthwise_kernel_refuses_arrays_it_would_overrun():
    vb = active_config().vector_bytes
    x, w, out = _dw_arrays()
    depthwise_blocked(x, w, out, (3, 3), (1, 1), (1, 1), 4, vb)  # exactly fits
    with pytest.raises(ValueError, match="reads past the padded input"):
        depthwise_blocked(*_dw_arrays(wp=5), (3, 3), (1, 1), (1, 1), 4, vb)
    with pytest.raises(ValueError, match="whole number of 3-pixel tiles"):
        depthwise_blocked(x, w, out, (3, 3), (1, 1), (1, 1), 3, vb)
    with pytest.raises(ValueError, match="shapes disagree"):
        depthwise_blocked(*_dw_arrays(mult=2)[:2], out, (3, 3), (1, 1), (1, 1), 4, vb)
    with pytest.raises(ValueError, match="blocks of"):
        depthwise_blocked(x.astype(np.float64), w, out, (3, 3), (1, 1), (1, 1), 4, vb)


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("channels, mult, stride, dilation", [(3, 1, 1, 1), (19, 2, 2, 1), (40, 1, 3, 2)])
def test_depthwise_layers_put_groups_in_the_lanes_and_match_the_reference(layout, channels, mult, stride, dilation):
    spec = convbench.ConvSpec(batch=2, in_channels=channels, out_channels=channels * mult, height=11, width=9,
                              kernel=3, stride=stride, dilation=dilation, padding=(1, 2, 0, 1), groups=channels,
                              layout=layout)
    x, w = spec.random_inputs(1)
    call = convbench.get_algorithm("direct-blocked").prepare(spec, w)
    assert convbench.relative_error(call(x), convbench.reference(spec, x, w)) < 1e-5


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("groups, per, lanes", [
    (3, 5, 4),  # 5 channels a group: a full block and a partial one
    (1, 3, 3),  # NHWC pixels that are whole blocks: one run a row
    (1, 3, 4),  # one partial block
])
def test_the_layout_copies_place_every_channel_in_its_lane_and_zero_the_rest(layout, groups, per, lanes):
    from convbench.kernels.blocked_layout import dense_lanes, from_blocked, to_blocked

    n, h, w = 2, 4, 3
    x = np.arange(n * groups * per * h * w, dtype=np.float32).reshape(n, groups * per, h, w) + 1
    xin = x.transpose(0, 2, 3, 1).copy() if layout == "nhwc" else x
    lane_map = dense_lanes(groups, per, lanes)
    xb = np.full((n, len(lane_map.base), h + 3, w + 2, lanes), np.nan, np.float32)
    to_blocked(xin, layout, lane_map, 1, 1, xb)
    want = np.zeros_like(xb)
    for b, (c0, v) in enumerate(zip(lane_map.base, lane_map.valid)):
        want[:, b, 1:1 + h, 1:1 + w, :v] = x[:, c0:c0 + v].transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(xb, want)
    back = np.empty_like(xin)
    from_blocked(np.ascontiguousarray(xb[:, :, 1:1 + h, 1:]), layout, lane_map, back)
    np.testing.assert_array_equal(back, xin)  # the row's extra column is dropped


def test_the_layout_copies_refuse_lane_maps_and_shapes_that_do_not_fit():
    from convbench.kernels.blocked_layout import Lanes, dense_lanes, depthwise_lanes, from_blocked, to_blocked

    x = np.zeros((1, 4, 3, 3), np.float32)
    xb = np.zeros((1, 1, 5, 5, 4), np.float32)
    one = np.array([1])
    with pytest.raises(ValueError, match="reach past the 4 channels"):
        Lanes(one, one, np.array([4]), 4, 4)
    with pytest.raises(ValueError, match="does not fit"):
        to_blocked(x, "nchw", dense_lanes(1, 4, 4), 3, 1, xb)
    with pytest.raises(ValueError, match="does not fit 1 blocks of 4 over 4"):
        to_blocked(x, "nchw", dense_lanes(1, 8, 4), 1, 1, xb)  # a map of another channel count
    with pytest.raises(ValueError, match="does not fit"):  # a depthwise output map has steps: never an input map
        to_blocked(x, "nchw", depthwise_lanes(2, 2, 4), 1, 1, xb)
    with pytest.raises(ValueError, match="do not fit"):
        from_blocked(xb, "nchw", dense_lanes(1, 4, 4), np.zeros((1, 4, 6, 3), np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kernel, padding, stride, groups, phases", [
    (1, 0, 1, 1, ("gemm",)),  # whole blocks, no padding, whole tiles: no copy at all
    (3, 1, 1, 2, ("pack", "gemm")),  # padding: the input is copied, the output written in place
    (1, 0, 2, 1, ("gemm",)),
])
def test_nhwc_layers_of_whole_blocks_skip_the_copies_and_match_the_reference(dtype, kernel, padding, stride, groups,
                                                                             phases):
    cfg = active_config()
    width = block_channels(cfg.vector_bytes, dtype)
    c = 2 * width * groups
    pixels, _ = tile_shape(2, cfg.db_pixels, cfg.db_blocks)  # rows of one whole tile, on any configuration
    spec = convbench.ConvSpec(batch=2, in_channels=c, out_channels=c, height=7, width=pixels * stride, kernel=kernel,
                              padding=padding, stride=stride, groups=groups, layout="nhwc", dtype=dtype)
    x, w = spec.random_inputs(4)
    call = convbench.get_algorithm("direct-blocked").prepare(spec, w)
    assert call.phases == phases
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert convbench.relative_error(call(x), convbench.reference(spec, x, w)) < tol


def test_the_nhwc_kernel_refuses_arrays_it_would_overrun():
    vb = active_config().vector_bytes
    lanes = block_channels(vb, np.float32)
    w = np.zeros((1, 1, 1, 1, 1, lanes, lanes), np.float32)
    x = np.zeros((1, 4, 4, lanes), np.float32)
    direct_blocked(x, w, np.zeros((1, 4, 4, lanes), np.float32), (1, 1), (1, 1), (1, 1), 4, vb, x_nhwc=True, out_nhwc=True)
    with pytest.raises(ValueError, match="reads past the input"):
        direct_blocked(x, w, np.zeros((1, 4, 6, lanes), np.float32), (1, 1), (1, 1), (1, 1), 3, vb, x_nhwc=True, out_nhwc=True)
    with pytest.raises(ValueError, match="does not hold"):
        direct_blocked(x[..., :1].copy(), w, np.zeros((1, 4, 4, lanes), np.float32), (1, 1), (1, 1), (1, 1),
                       4, vb, x_nhwc=True, out_nhwc=True)
    with pytest.raises(ValueError, match="does not hold"):
        direct_blocked(x, w, np.zeros((1, 4, 4, 2 * lanes), np.float32), (1, 1), (1, 1), (1, 1), 4, vb,
                       x_nhwc=True, out_nhwc=True)


def test_groups_of_any_few_channels_share_one_compiled_kernel_and_match_the_reference():
    """A group of fewer channels than a vector (other than 3, an image's colours) reads its
    count at run time: 2 and 5 channels a group run one compiled kernel, each right."""
    from convbench.kernels import direct_blocked as kernels

    cfg = active_config()
    if block_channels(cfg.vector_bytes, "float32") <= 5:
        pytest.skip("this configuration's vector holds 5 float32 channels or fewer: 5 would be a whole block")
    built = []
    for per in (2, 5):
        spec = convbench.ConvSpec(batch=2, in_channels=2 * per, out_channels=6, height=6, width=7, kernel=3,
                                  padding=(1, 0, 2, 1), stride=2, groups=2, layout="nhwc")
        x, w = spec.random_inputs(5)
        before = kernels._compiled.cache_info().currsize
        call = convbench.get_algorithm("direct-blocked").prepare(spec, w)
        built.append(kernels._compiled.cache_info().currsize - before)
        assert convbench.relative_error(call(x), convbench.reference(spec, x, w)) < 1e-5
    assert built[1] == 0  # the 5-channel groups found the 2-channel groups' kernel


def test_blocked_and_nhwc_arrays_run_one_compiled_kernel_of_flat_arrays():
    """The kernel takes the input and output as flat views, so a layer that reads NHWC as it
    lies and one that reads the blocked copy compile one kernel between them, not one each."""
    from convbench.kernels import direct_blocked as kernels

    cfg = active_config()
    c = 2 * block_channels(cfg.vector_bytes, "float32")
    for kernel, padding in ((1, 0), (3, 1)):  # NHWC read as it lies; the blocked, padded copy
        spec = convbench.ConvSpec(batch=1, in_channels=c, out_channels=c, height=5, width=6, kernel=kernel,
                                  padding=padding, layout="nhwc")
        x, w = spec.random_inputs(6)
        call = convbench.get_algorithm("direct-blocked").prepare(spec, w)
        assert convbench.relative_error(call(x), convbench.reference(spec, x, w)) < 1e-5
    pixels, blocks = tile_shape(2, cfg.db_pixels, cfg.db_blocks)
    jobs = kernels._compiled(pixels, blocks, cfg.vector_bytes, c // 2)
    assert jobs.signatures and all(sig[1].ndim == 1 and sig[3].ndim == 1 for sig in jobs.signatures)


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("kernel, padding, stride, dilation, groups", [
    (3, (1, 0, 2, 1), 2, 1, 1),  # asymmetric padding: taps of padding rows and columns skipped in every slice
    (3, 2, 1, 2, 2),
    (1, 0, 1, 1, 1),  # NHWC whole blocks: the output written in place, slice after slice
])
def test_input_blocks_in_slices_add_onto_the_output_and_match_the_reference(monkeypatch, layout, kernel, padding,
                                                                          stride, dilation, groups):
    """Weights past ``SLICE_BYTES`` a tile go in slices of input blocks, each added onto what the
    earlier left: here one block a slice, so every tile of every band adds 3 slices (the last short)."""
    from convbench.kernels import direct_blocked as kernels

    width = block_channels(active_config().vector_bytes, "float32")
    monkeypatch.setattr(kernels, "SLICE_BYTES", 1)  # one input block a slice
    spec = convbench.ConvSpec(batch=2, in_channels=groups * (2 * width + 3), out_channels=groups * 2 * width,
                              height=9, width=11, kernel=kernel, padding=padding, stride=stride, dilation=dilation,
                              groups=groups, layout=layout)
    x, w = spec.random_inputs(6)
    call = convbench.get_algorithm("direct-blocked").prepare(spec, w)
    assert convbench.relative_error(call(x), convbench.reference(spec, x, w)) < 1e-5
