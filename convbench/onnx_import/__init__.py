"""A network's convolution layers from an ONNX model, as a convbench config.

:func:`import_onnx` reads a model with the ``onnx`` package (the weights are
never loaded: shapes come from the graph and its initializers' dimensions),
fixes symbolic input dimensions the caller names (``batch``,
``input_shapes``), runs ONNX shape inference, and walks the graph's nodes in
order. Every 2-D ``Conv`` becomes a layer: channels, input size, kernel,
stride, padding (``auto_pad`` resolved; asymmetric kept as
``[top, bottom, left, right]``), dilation and groups, depthwise recognised.
The 8-bit ``QLinearConv`` and ``ConvInteger`` nodes become ``u8s8`` layers
(``dtype: u8s8``) read the same way; ``ConvInteger`` has no output
requantization (its output is int32), which the layer's ``note`` says: the
layer measured is the ``u8s8`` one of the same shape. Activations or weights
of the other signedness (s8 activations, u8 weights) are noted too.
Layers of the same shape are one layer with ``count`` = occurrences, named
after the first node. What cannot be a convbench layer (a 1-D or 3-D conv,
``ConvTranspose``, contrib convolutions, shapes still symbolic
after inference, convs inside subgraphs) is listed in
:attr:`Imported.skipped` with the reason, never dropped silently.
:func:`render_config` writes the config text, the skipped layers in a
comment at its top.

A model is data from elsewhere: files over ``max_size`` bytes are refused
unless the caller raises the limit, and so is any external-data reference
(weights kept beside the model) that points outside the model's folder.
Every problem raises :class:`OnnxImportError` whose message names the file
(and the node or input where there is one).
"""

from .layers import import_onnx
from .model import DEFAULT_MAX_SIZE, Imported, ImportedLayer, OnnxImportError, Skipped, parse_input_shape
from .render import render_config

__all__ = [
    "DEFAULT_MAX_SIZE", "Imported", "ImportedLayer", "OnnxImportError", "Skipped", "import_onnx",
    "parse_input_shape", "render_config",
]
