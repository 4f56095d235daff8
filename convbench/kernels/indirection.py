"""The indirection buffer of Indirect Convolution (Dukhan, 2019).

For each output pixel ``p = oh*OW + ow`` and kernel tap ``t = r*S + s`` the
buffer holds the element offset, within one NHWC image, of the input pixel
that tap reads: ``(ih*W + iw) * C``. Taps that fall into the padding hold
``-1``, which the kernels resolve to a separate zero vector of ``C``
elements, so no padded copy of the input is ever made. Offsets (not
pointers) keep the buffer valid for every image of a batch and every call:
the kernel adds ``n * H * W * C``.
"""

from __future__ import annotations

import numpy as np

from ..spec import ConvSpec

#: Offset value of a padding tap (read the zero vector instead).
ZERO = -1


def indirection_buffer(spec: ConvSpec) -> np.ndarray:
    """``(OH*OW, R*S)`` int64 element offsets into one NHWC image, ``-1`` for padding."""
    oh, ow = spec.output_height, spec.output_width
    r, s = spec.kernel
    ih = (np.arange(oh) * spec.stride_h - spec.pad_top)[:, None] + np.arange(r) * spec.dilation_h
    iw = (np.arange(ow) * spec.stride_w - spec.pad_left)[:, None] + np.arange(s) * spec.dilation_w
    ih = ih[:, None, :, None]  # (OH, 1, R, 1)
    iw = iw[None, :, None, :]  # (1, OW, 1, S)
    valid = (ih >= 0) & (ih < spec.height) & (iw >= 0) & (iw < spec.width)
    offs = np.where(valid, (ih * spec.width + iw) * spec.in_channels, ZERO)
    return np.ascontiguousarray(offs.reshape(oh * ow, r * s), dtype=np.int64)


def indirection_bytes(spec: ConvSpec) -> int:
    """Size of :func:`indirection_buffer` for ``spec``."""
    return spec.output_height * spec.output_width * spec.kernel_h * spec.kernel_w * 8
