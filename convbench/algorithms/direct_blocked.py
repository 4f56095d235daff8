"""``direct-blocked``: direct convolution on a channel-blocked layout, the algorithm oneDNN,
ARM Compute Library and TVM's CPU schedules lead with; Indirect Convolution's rival
(both avoid the im2col matrix: one by pointers, the other by a layout).

``prepare`` reorders the weights once into ``(G, KB / B, CB, R, S, CW, B * W)``
blocks of the configuration's vector width ``W`` (``CW``: ``W`` input
channels, or a group's all where it has fewer; ``B``: the output blocks of
a register tile) (:mod:`convbench.kernels.direct_blocked`). The call
converts the input to the blocked layout, zero-padded by the layer's
padding (``pack``), runs the register-blocked kernel (``gemm``: a tile of
``db_pixels`` output pixels x ``db_blocks`` blocks of ``W`` output channels
held in registers over the whole reduction, where the layer's blocks divide
by it, else fewer blocks and more pixels), and converts the output back to
the spec's layout (``transform_out``). Those conversions are counted in its
time, as oneDNN's reorders are in the ``onednn`` peer's. It needs no
workspace beyond the blocked copies of the input and the output
(``workspace_bytes`` says 0 and its docstring which copies: the harness
hands every algorithm NCHW or NHWC, so the copies are its layout, not a
workspace). In NHWC a block is already ``W`` neighbouring channels of a
pixel, so an unpadded layer whose groups hold whole blocks reads its input
as it lies (no ``pack``), and one whose groups hold whole output blocks
writes its output in place (no ``transform_out``; rows of any width end in
shorter tiles): most 1x1 layers skip both copies. Channels of a group are padded to whole blocks (output blocks
always ``W`` wide), so grouped layers with few output channels per group
compute lanes they throw away. Depthwise
layers (one input channel a group, any number of outputs a group) have
their own path instead, as in oneDNN: the *groups* fill the vector lanes, and
a tap is one elementwise multiply-add of ``W`` groups
(:func:`~convbench.kernels.depthwise_blocked.depthwise_blocked`).

Threads (issue 31): the kernel's jobs are output rows of one tile of channel
blocks ``(n, g, kt, oh)`` on the kernels' pool, on one thread per grain of work
(:mod:`convbench.kernels.grain`); so are the blocked copies of the input and
output (``pack``, ``transform_out``: :mod:`convbench.kernels.blocked_layout`),
a row a job. (As numpy slice copies on one thread they were 5-15% of a 3x3
call, the share that did not halve.)
"""

from __future__ import annotations

import numpy as np

from ..algorithm import Algorithm, Array, ConvCall
from ..kernels.aligned import aligned_empty
from ..kernels.blocked_layout import dense_lanes, depthwise_lanes, from_blocked, to_blocked
from ..kernels.configs import active_config
from ..kernels.depthwise_blocked import depthwise_blocked
from ..kernels.direct_blocked import block_channels, plan_direct_blocked, row_tiles, tile_shape
from ..phases import phased
from ..registry import register
from ..spec import ConvSpec


def _blocks(n: int, width: int) -> int:
    return (n + width - 1) // width


def _rows(spec: ConvSpec, most: int, whole: bool) -> tuple[int, int, int, int]:
    """``(pixels, OWp, Hp, Wp)``: the register tile, the output row, and the padded input
    those rows read (wider than the layer's padding where the last tile reads past it).
    ``whole``: the row is padded to whole tiles of at most ``most`` pixels, balanced;
    else it is as it is, in tiles of ``most`` and shorter ones (one compiled kernel for
    every width)."""
    pixels, owp = row_tiles(spec.output_width, most) if whole else (most, spec.output_width)
    hp = spec.height + spec.pad_top + spec.pad_bottom
    wp = max(spec.width + spec.pad_left + spec.pad_right,
             (owp - 1) * spec.stride_w + (spec.kernel_w - 1) * spec.dilation_w + 1)
    return pixels, owp, hp, wp


@register
class DirectBlocked(Algorithm):
    """Channel-blocked direct convolution, register-blocked over pixels and output channels."""

    name = "direct-blocked"
    description = "direct convolution on a channel-blocked layout (oneDNN's), register-blocked, no workspace"
    natural_layout = None
    constraints = "none (grouped layers with few channels a group run padded to whole channel blocks)"

    def implementation(self, spec: ConvSpec) -> str:
        cfg = active_config()
        return f"numba:direct-blocked-{cfg.db_pixels}x{cfg.db_blocks * block_channels(cfg.vector_bytes, spec.dtype)}"

    def workspace_bytes(self, spec: ConvSpec) -> int:
        """0: its only extra memory is the blocked (zero-padded) copies of the input and
        of the output that its layout needs, which are the call's ``pack`` and
        ``transform_out`` (``measured_workspace_bytes`` shows them)."""
        return 0

    def prepare(self, spec: ConvSpec, weight: Array) -> ConvCall:
        if spec.channels_per_group == 1:
            return _prepare_depthwise(spec, weight)
        cfg = active_config()
        dtype = spec.np_dtype
        wdt = block_channels(cfg.vector_bytes, dtype)
        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        cw = min(cg, wdt)  # input lanes: a group with fewer channels than a vector is not padded to one
        cb, kb = _blocks(cg, cw), _blocks(kg, wdt)
        most, bt = tile_shape(kb, cfg.db_pixels, cfg.db_blocks)  # the tile: pixels x bt output blocks
        kh, kw = spec.kernel
        padded = np.zeros((g, kb * wdt, cb * cw, kh, kw), dtype)
        padded[:, :kg, :cg] = np.asarray(weight).reshape(g, kg, cg, kh, kw)
        wb = aligned_empty((g, kb // bt, cb, kh, kw, cw, bt * wdt), dtype)
        wb[...] = padded.reshape(g, kb // bt, bt * wdt, cb, cw, kh, kw).transpose(0, 1, 3, 5, 6, 4, 2)
        n, w = spec.batch, spec.width
        top, left = spec.pad_top, spec.pad_left
        oh, ow = spec.output_height, spec.output_width
        pixels, owp, hp, wp = _rows(spec, most, whole=False)
        in_lanes, out_lanes = dense_lanes(g, cg, cw), dense_lanes(g, kg, wdt)
        layout = spec.layout
        # NHWC whose blocks are already W neighbouring channels of a pixel needs no copy: the
        # input where the layer has no padding and its tiles read no column past the image,
        # the output where its groups hold whole blocks and its rows whole tiles
        unpadded = spec.pad_top == spec.pad_bottom == spec.pad_left == spec.pad_right == 0
        x_direct = layout == "nhwc" and cw == wdt and cg % wdt == 0 and unpadded and wp == w
        out_direct = layout == "nhwc" and kg % wdt == 0 and owp == ow
        out_shape = spec.output_shape if out_direct else (n, g, kb, oh, owp, wdt)

        def pack(x: Array) -> Array:
            xb = aligned_empty((n, g, cb, hp, wp, cw), dtype)  # every element written: padding and spare lanes zero
            to_blocked(x, layout, in_lanes, top, left, xb.reshape(n, g * cb, hp, wp, cw))
            return xb

        x_shape = spec.input_shape if x_direct else (n, g, cb, hp, wp, cw)
        run = plan_direct_blocked(x_shape, dtype, wb, out_shape, spec.kernel, spec.stride, spec.dilation, pixels,
                                  cfg.vector_bytes, x_nhwc=x_direct, out_nhwc=out_direct,
                                  rows=(top, top + spec.height), cols=(left, left + w))

        def compute(xb: Array) -> Array:
            out = aligned_empty(out_shape, dtype)
            run(xb, out)
            return out

        def unpack(ob: Array) -> Array:
            y = aligned_empty(spec.output_shape, dtype)
            from_blocked(ob.reshape(n, g * kb, oh, owp, wdt), layout, out_lanes, y)
            return y

        steps = [("pack", pack)] if not x_direct else []
        steps += [("gemm", compute)] + ([("transform_out", unpack)] if not out_direct else [])
        return phased(*steps)


def _prepare_depthwise(spec: ConvSpec, weight: Array) -> ConvCall:
    """The depthwise path: groups in the vector lanes, blocks of ``W`` groups."""
    cfg = active_config()
    dtype = spec.np_dtype
    wdt = block_channels(cfg.vector_bytes, dtype)
    g, mult = spec.groups, spec.out_channels_per_group
    gb = _blocks(g, wdt)
    kh, kw = spec.kernel
    padded = np.zeros((gb * wdt, mult, kh, kw), dtype)  # spare lanes: zero weights, zero outputs
    padded[:g] = np.asarray(weight).reshape(g, mult, kh, kw)
    wb = aligned_empty((gb, mult, kh, kw, wdt), dtype)
    wb[...] = padded.reshape(gb, wdt, mult, kh, kw).transpose(0, 2, 3, 4, 1)
    n, top, left = spec.batch, spec.pad_top, spec.pad_left
    oh = spec.output_height
    pixels, owp, hp, wp = _rows(spec, cfg.db_pixels * cfg.db_blocks, whole=True)  # as many accumulators
    in_lanes, out_lanes = depthwise_lanes(g, 1, wdt), depthwise_lanes(g, mult, wdt)
    layout = spec.layout

    def pack(x: Array) -> Array:
        xb = aligned_empty((n, gb, hp, wp, wdt), dtype)
        to_blocked(x, layout, in_lanes, top, left, xb)
        return xb

    def compute(xb: Array) -> Array:
        out = aligned_empty((n, gb, mult, oh, owp, wdt), dtype)
        depthwise_blocked(xb, wb, out, spec.kernel, spec.stride, spec.dilation, pixels, cfg.vector_bytes)
        return out

    def unpack(ob: Array) -> Array:  # output channel (gb * W + lane) * M + m
        y = aligned_empty(spec.output_shape, dtype)
        from_blocked(ob.reshape(n, gb * mult, oh, owp, wdt), layout, out_lanes, y)
        return y

    return phased(("pack", pack), ("gemm", compute), ("transform_out", unpack))
