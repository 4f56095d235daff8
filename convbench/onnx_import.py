"""A network's convolution layers from an ONNX model, as a convbench config.

:func:`import_onnx` reads a model with the ``onnx`` package (the weights are
never loaded: shapes come from the graph and its initializers' dimensions),
fixes symbolic input dimensions the caller names (``batch``,
``input_shapes``), runs ONNX shape inference, and walks the graph's nodes in
order. Every 2-D ``Conv`` becomes a layer: channels, input size, kernel,
stride, padding (``auto_pad`` resolved; asymmetric kept as
``[top, bottom, left, right]``), dilation and groups, depthwise recognised.
Layers of the same shape are one layer with ``count`` = occurrences, named
after the first node. What cannot be a convbench layer (a 1-D or 3-D conv,
``ConvTranspose``, quantized or contrib convolutions, shapes still symbolic
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

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Largest model file read without the caller raising the limit (``--max-size``).
DEFAULT_MAX_SIZE = 1 << 30  # 1 GiB

#: Convolution op types that are not 2-D ``Conv`` and why each cannot be a layer.
_OTHER_CONVS = {
    "ConvTranspose": "transposed convolution (ConvTranspose) is not a convbench layer",
    "QLinearConv": "quantized convolution (QLinearConv) is not a convbench layer (float32/float64 only)",
    "ConvInteger": "integer convolution (ConvInteger) is not a convbench layer (float32/float64 only)",
    "DeformConv": "deformable convolution is not a convbench layer",
    "FusedConv": "ONNX Runtime contrib op FusedConv: export the unoptimized model to import its Conv",
    "NhwcConv": "ONNX Runtime contrib op NhwcConv: export the unoptimized model to import its Conv",
}


class OnnxImportError(Exception):
    """The model cannot be imported; the message says which file and why."""


@dataclass
class ImportedLayer:
    """One distinct convolution shape of the network."""

    name: str
    fields: dict[str, Any]  # config layer fields (name excluded)
    count: int
    nodes: list[str]  # every node of this shape, in network order


@dataclass
class Skipped:
    """A convolution node that cannot be a convbench layer."""

    node: str
    op_type: str
    reason: str


@dataclass
class Imported:
    """What :func:`import_onnx` found."""

    path: Path
    network: str
    batch: int | None
    layers: list[ImportedLayer] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # assumptions made (a symbolic batch set to 1, ...)
    inputs: dict[str, list[Any]] = field(default_factory=dict)  # graph inputs as used
    opset: int | None = None


# -- reading, with the safety checks ------------------------------------------------------


def _load(path: Path, max_size: int) -> Any:
    try:
        import onnx
    except ImportError:
        raise OnnxImportError("convbench import needs the onnx package: pip install onnx "
                              "(or pip install -e '.[peers]')") from None
    if not path.exists():
        raise OnnxImportError(f"{path}: no such file")
    if not path.is_file():
        raise OnnxImportError(f"{path}: not a file")
    size = path.stat().st_size
    if size > max_size:
        from .machine.memory import format_size

        raise OnnxImportError(
            f"{path}: the model file is {format_size(size)}, over the limit of {format_size(max_size)}; "
            "if you trust it, raise the limit with --max-size (e.g. --max-size 4GiB)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OnnxImportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise OnnxImportError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})".rstrip(": )") + ")") from None
    # random bytes can parse as an empty protobuf message: a model has an IR version and a graph
    if not model.ir_version or not model.HasField("graph"):
        raise OnnxImportError(f"{path}: not an ONNX model (no IR version or no graph)")
    _check_external_data(model, path)
    return model


def _tensors(graph: Any) -> Any:
    """Every TensorProto of ``graph`` and its subgraphs (initializers and constant attributes)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for g in attr.graphs:
                yield from _tensors(g)


def _check_external_data(model: Any, path: Path) -> None:
    """Refuse external-data locations outside the model's folder (they are never read here,
    but a config made from this model would be shared with the model beside it)."""
    from onnx import TensorProto

    folder = path.resolve().parent
    for tensor in _tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
            raise OnnxImportError(
                f"{path}: tensor {tensor.name!r} keeps its data at {location!r}, outside the model's folder "
                f"{folder}; refusing a model that points elsewhere (move the data file next to the model)")


# -- input shapes --------------------------------------------------------------------------


def parse_input_shape(text: str) -> tuple[str | None, list[int]]:
    """``"NAME:1,3,224,224"`` or ``"1,3,224,224"`` (the only input) as (name, dims)."""
    name, _, dims = text.rpartition(":") if ":" in text else (None, "", text)
    try:
        values = [int(v) for v in dims.split(",")]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise OnnxImportError(
            f"--input-shape must look like NAME:1,3,224,224 or 1,3,224,224 (positive integers); got {text!r}")
    return (name or None), values


def _dims(value_info: Any) -> list[Any] | None:
    """The shape of a value as ints (known) and strings/None (symbolic, unknown); None: no shape."""
    t = value_info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim]


def _set_inputs(model: Any, path: Path, batch: int | None,
                shapes: list[tuple[str | None, list[int]]], notes: list[str]) -> dict[str, list[Any]]:
    graph = model.graph
    init = {t.name for t in graph.initializer}
    inputs = [vi for vi in graph.input if vi.name not in init]
    by_name = {vi.name: vi for vi in inputs}
    given: dict[str, list[int]] = {}
    for name, dims in shapes:
        if name is None:
            if len(inputs) != 1:
                names = ", ".join(by_name) or "(none)"
                raise OnnxImportError(f"{path}: the model has {len(inputs)} inputs ({names}); "
                                      "name one in --input-shape NAME:dims")
            name = inputs[0].name
        if name not in by_name:
            raise OnnxImportError(f"{path}: --input-shape names {name!r}, not an input of the model "
                                  f"(inputs: {', '.join(by_name) or 'none'})")
        given[name] = dims
    used = {}
    for vi in inputs:
        dims = _dims(vi)
        if vi.name in given:
            new = list(given[vi.name])
            if dims is not None and len(dims) != len(new):
                raise OnnxImportError(f"{path}: input {vi.name!r} has {len(dims)} dimensions, "
                                      f"--input-shape gave {len(new)}")
        elif dims is None:
            used[vi.name] = []
            continue
        else:
            new = list(dims)
            if new and batch is not None:
                new[0] = batch
            elif new and not isinstance(new[0], int) or (new and new[0] == 0):
                notes.append(f"input {vi.name!r}: symbolic batch dimension {new[0]!r} set to 1 (use --batch N)")
                new[0] = 1
        shape = vi.type.tensor_type.shape
        del shape.dim[:]
        for d in new:
            dim = shape.dim.add()
            if isinstance(d, int) and d > 0:
                dim.dim_value = d
            elif d:
                dim.dim_param = str(d)
        used[vi.name] = new
    return used


# -- the walk over the graph -------------------------------------------------------------------


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _same_pads(size: list[int], kernel: list[int], stride: list[int], dilation: list[int], upper: bool) -> list[int]:
    """ONNX auto_pad SAME_UPPER/SAME_LOWER as explicit [h_begin, w_begin, h_end, w_end]."""
    begins, ends = [], []
    for i, k, s, d in zip(size, kernel, stride, dilation):
        out = math.ceil(i / s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - i)
        small, big = total // 2, total - total // 2
        begins.append(small if upper else big)
        ends.append(big if upper else small)
    return begins + ends


def _pair(values: list[int]) -> Any:
    return values[0] if values[0] == values[1] else list(values)


def _padding(pads: list[int]) -> Any:
    top, left, bottom, right = pads  # ONNX: all begins, then all ends
    if top == bottom == left == right:
        return top
    if top == bottom and left == right:
        return [top, left]
    return [top, bottom, left, right]


def _layer_fields(node: Any, x: list[Any], w: list[Any], where: str) -> dict[str, Any]:
    """Config fields of a 2-D Conv node; OnnxImportError-free: raises ValueError with the reason."""
    a = _attrs(node)
    unresolved = [i for i, d in enumerate(x) if not isinstance(d, int) or d < 1]
    if unresolved:
        shown = [d if isinstance(d, int) and d > 0 else (d or "?") for d in x]
        raise ValueError(f"dynamic shape: its input is {shown} after shape inference; fix the symbolic "
                         "dimensions with --input-shape NAME:dims (and --batch)")
    if any(not isinstance(d, int) or d < 1 for d in w):
        raise ValueError(f"the weight's shape {w} is not known (a computed weight?)")
    n, c, h, wd = x
    k, cg, kh, kw = w
    group = int(a.get("group", 1))
    kernel = list(a.get("kernel_shape", [kh, kw]))
    if kernel != [kh, kw]:
        raise ValueError(f"kernel_shape {kernel} disagrees with the weight's {[kh, kw]}")
    if cg * group != c:
        raise ValueError(f"weight has {cg} channels per group x group {group} != {c} input channels")
    stride = list(a.get("strides", [1, 1]))
    dilation = list(a.get("dilations", [1, 1]))
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = _same_pads([h, wd], kernel, stride, dilation, auto_pad == "SAME_UPPER")
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = list(a.get("pads", [0, 0, 0, 0]))
    fields: dict[str, Any] = {"batch": n}
    depthwise = group == c and group > 1
    if depthwise:
        fields["channels" if k == c else "in_channels"] = c
        if k != c:
            fields["out_channels"] = k
    else:
        fields.update(in_channels=c, out_channels=k)
    fields["size" if h == wd else "height"] = h
    if h != wd:
        fields["width"] = wd
    fields["kernel"] = _pair(kernel)
    if stride != [1, 1]:
        fields["stride"] = _pair(stride)
    padding = _padding(pads)
    if padding != 0:
        fields["padding"] = padding
    if dilation != [1, 1]:
        fields["dilation"] = _pair(dilation)
    if depthwise:
        fields["depthwise"] = True
    elif group > 1:
        fields["groups"] = group
    kind = "dw" if depthwise else ("g" if group > 1 else "")
    fields["layer_class"] = f"{kind}{kernel[0]}x{kernel[1]}"
    from .spec import ConvSpec

    ConvSpec(batch=n, in_channels=c, out_channels=k, height=h, width=wd, kernel=tuple(kernel),
             stride=tuple(stride), padding=(pads[0], pads[2], pads[1], pads[3]), dilation=tuple(dilation),
             groups=group)  # raises ValueError (e.g. an empty output) with the field named
    return fields


def _node_label(node: Any, index: int) -> str:
    return node.name or f"{node.op_type.lower()}_{index}"


def _layer_name(label: str, taken: set[str]) -> str:
    name = re.sub(r"[|\s]+", "_", label).strip("_") or "conv"
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def import_onnx(path: str | Path, *, batch: int | None = None, input_shapes: list[str] | None = None,
                max_size: int = DEFAULT_MAX_SIZE) -> Imported:
    """Every distinct 2-D convolution of the ONNX model at ``path``, in network order.

    ``batch`` replaces the first dimension of every graph input;
    ``input_shapes`` (``"NAME:1,3,224,224"``, or just the dims for a model
    with one input) fixes whole input shapes. A symbolic batch dimension
    left unfixed is set to 1 (noted in :attr:`Imported.notes`).
    """
    path = Path(path)
    if batch is not None and batch < 1:
        raise OnnxImportError(f"--batch must be an integer >= 1, got {batch}")
    shapes = [parse_input_shape(s) for s in input_shapes or []]
    model = _load(path, max_size)
    import onnx

    result = Imported(path=path, network=model.graph.name or path.stem, batch=batch)
    result.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    result.inputs = _set_inputs(model, path, batch, shapes, result.notes)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # a malformed graph: convs keep whatever shapes the file states
        result.notes.append(f"shape inference failed ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                            "only shapes stated in the file are known")
    graph = model.graph
    known: dict[str, list[Any]] = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = _dims(vi)
        if dims is not None:
            known[vi.name] = dims
    for t in graph.initializer:
        known[t.name] = list(t.dims)

    by_shape: dict[tuple, ImportedLayer] = {}
    taken: set[str] = set()
    for index, node in enumerate(graph.node):
        label = _node_label(node, index)
        _skip_subgraph_convs(node, label, result.skipped)
        if node.domain not in ("", "ai.onnx") and node.op_type not in _OTHER_CONVS:
            continue
        if node.op_type in _OTHER_CONVS:
            result.skipped.append(Skipped(label, node.op_type, _OTHER_CONVS[node.op_type]))
            continue
        if node.op_type != "Conv":
            continue
        x = known.get(node.input[0])
        w = known.get(node.input[1]) if len(node.input) > 1 else None
        rank = len(x) if x is not None else (len(w) if w is not None else None)
        if rank is None:
            result.skipped.append(Skipped(label, "Conv", "dynamic shape: shape inference could not find its input's "
                                                         "shape; give --input-shape"))
            continue
        if rank != 4:
            dims = rank - 2
            result.skipped.append(Skipped(label, "Conv", f"{dims}-D convolution; convbench layers are 2-D"))
            continue
        if x is None or w is None:
            result.skipped.append(Skipped(label, "Conv", "dynamic shape: its input or weight shape is unknown "
                                                         "after shape inference; give --input-shape"))
            continue
        try:
            fields = _layer_fields(node, x, w, f"{path}: node {label!r}")
        except ValueError as exc:
            result.skipped.append(Skipped(label, "Conv", str(exc)))
            continue
        key = tuple(sorted((k, str(v)) for k, v in fields.items()))
        if key in by_shape:
            by_shape[key].count += 1
            by_shape[key].nodes.append(label)
        else:
            layer = ImportedLayer(_layer_name(label, taken), fields, 1, [label])
            by_shape[key] = layer
            result.layers.append(layer)
    return result


def _skip_subgraph_convs(node: Any, label: str, skipped: list[Skipped]) -> None:
    """Convs inside an If/Loop/Scan body run a data-dependent number of times: listed, not imported."""
    def walk(graph: Any) -> None:
        for i, inner in enumerate(graph.node):
            if inner.op_type in ("Conv", *_OTHER_CONVS):
                skipped.append(Skipped(f"{label}/{_node_label(inner, i)}", inner.op_type,
                                       f"inside a subgraph of {node.op_type} node {label!r} "
                                       "(runs a data-dependent number of times)"))
            for attr in inner.attribute:
                for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    walk(g)

    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            walk(g)


# -- writing the config -------------------------------------------------------------------------


def _flow(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, default_flow_style=True, sort_keys=False, width=10_000).strip()


def render_config(result: Imported, name: str | None = None) -> str:
    """The config text: a header comment (source, inputs, notes, skipped layers), then the layers."""
    config_name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", result.path.stem) or "imported"
    batches = {layer.fields["batch"] for layer in result.layers}
    common_batch = batches.pop() if len(batches) == 1 else None
    lines = [
        f"# Imported from {result.path.name} by `convbench import` (ONNX opset {result.opset}): every",
        "# distinct 2-D convolution in network order; count = how often the shape occurs.",
        "# Field reference: the docstring of convbench/config.py.",
    ]
    if result.inputs:
        shown = ", ".join(f"{k} {v}" for k, v in result.inputs.items())
        lines.append(f"# inputs as imported: {shown}")
    for note in result.notes:
        lines.append(f"# note: {note}")
    if result.skipped:
        lines.append(f"# {len(result.skipped)} convolution(s) not imported:")
        for s in result.skipped:
            lines.append(f"#   {s.node} ({s.op_type}): {s.reason}")
    head = {
        "name": config_name,
        "network": result.network,
        "description": f"{len(result.layers)} distinct conv shapes "
                       f"({sum(l.count for l in result.layers)} conv layers) imported from {result.path.name}",
        "seed": 0,
        "algorithms": "all",
        "baseline": "im2col",
        "threads": [1],
    }
    from .config import dump_config

    body = dump_config(head)
    body += "defaults:\n"
    if common_batch is not None:
        body += f"  batch: {common_batch}\n"
    body += "  layout: [nchw, nhwc]\n  dtype: float32\nlayers:\n"
    for layer in result.layers:
        fields = {"name": layer.name, **layer.fields}
        if common_batch is not None:
            fields.pop("batch")
        if layer.count > 1:
            fields["count"] = layer.count
            others = layer.nodes[1:]
            shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
            fields["note"] = f"also {shown}"
        body += f"  - {_flow(fields)}\n"
    return "\n".join(lines) + "\n" + body
