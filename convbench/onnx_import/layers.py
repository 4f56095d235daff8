"""The walk over an ONNX graph: every 2-D ``Conv`` (and 8-bit ``QLinearConv``,
``ConvInteger``) node as config layer fields."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from .model import (
    CONTRIB_QUANTIZED, DEFAULT_MAX_SIZE, OTHER_CONVS, QUANTIZED_CONVS, Imported, ImportedLayer, OnnxImportError,
    Skipped, dims_of, load, parse_input_shape, set_inputs,
)

#: ONNX TensorProto element types of 8-bit data.
_UINT8, _INT8 = 2, 3

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
    from ..spec import ConvSpec

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


def _quant_note(op: str, x_type: int | None, w_type: int | None) -> str:
    """What a ``u8s8`` layer made from an 8-bit node leaves out or changes ("" when nothing)."""
    parts = []
    if op == "ConvInteger":
        parts.append("ConvInteger: int32 output, no requantization; measured as the u8s8 layer of this shape "
                     "(QLinearConv's arithmetic, requantized to u8)")
    if x_type == _INT8:
        parts.append("the model's activations are int8 (u8 here)")
    if w_type == _UINT8:
        parts.append("the model's weights are uint8 with a zero point (symmetric int8 here)")
    return "; ".join(parts)


def _elem_types(graph: Any) -> dict[str, int]:
    """Element type of every value the graph states (inputs, value_info, outputs, initializers)."""
    types = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        t = vi.type
        if t.HasField("tensor_type") and t.tensor_type.elem_type:
            types[vi.name] = t.tensor_type.elem_type
    for t in graph.initializer:
        types[t.name] = t.data_type
    return types


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
    model = load(path, max_size)
    import onnx

    result = Imported(path=path, network=model.graph.name or path.stem, batch=batch)
    result.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    result.inputs = set_inputs(model, path, batch, shapes, result.notes)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # a malformed graph: convs keep whatever shapes the file states
        result.notes.append(f"shape inference failed ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                            "only shapes stated in the file are known")
    graph = model.graph
    known: dict[str, list[Any]] = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = dims_of(vi)
        if dims is not None:
            known[vi.name] = dims
    for t in graph.initializer:
        known[t.name] = list(t.dims)
    types = _elem_types(graph)

    by_shape: dict[tuple, ImportedLayer] = {}
    taken: set[str] = set()
    for index, node in enumerate(graph.node):
        label = _node_label(node, index)
        _skip_subgraph_convs(node, label, result.skipped)
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            if op in OTHER_CONVS:
                result.skipped.append(Skipped(label, op, OTHER_CONVS[op]))
            elif op in QUANTIZED_CONVS:
                result.skipped.append(Skipped(label, f"{node.domain}.{op}", CONTRIB_QUANTIZED.format(op=op)))
            continue
        if op in OTHER_CONVS:
            result.skipped.append(Skipped(label, op, OTHER_CONVS[op]))
            continue
        if op != "Conv" and op not in QUANTIZED_CONVS:
            continue
        xi, wi = QUANTIZED_CONVS.get(op, (0, 1))
        x = known.get(node.input[xi])
        w = known.get(node.input[wi]) if len(node.input) > wi else None
        rank = len(x) if x is not None else (len(w) if w is not None else None)
        if rank is None:
            result.skipped.append(Skipped(label, op, "dynamic shape: shape inference could not find its input's "
                                                     "shape; give --input-shape"))
            continue
        if rank != 4:
            dims = rank - 2
            result.skipped.append(Skipped(label, op, f"{dims}-D convolution; convbench layers are 2-D"))
            continue
        if x is None or w is None:
            result.skipped.append(Skipped(label, op, "dynamic shape: its input or weight shape is unknown "
                                                     "after shape inference; give --input-shape"))
            continue
        try:
            fields = _layer_fields(node, x, w, f"{path}: node {label!r}")
        except ValueError as exc:
            result.skipped.append(Skipped(label, op, str(exc)))
            continue
        if op in QUANTIZED_CONVS:
            fields["dtype"] = "u8s8"
            note = _quant_note(op, types.get(node.input[xi]), types.get(node.input[wi]))
            if note:
                fields["note"] = note
        key = tuple(sorted((k, str(v)) for k, v in fields.items()))
        if key in by_shape:
            by_shape[key].count += 1
            by_shape[key].nodes.append(label)
        else:
            layer = ImportedLayer(_layer_name(label, taken), fields, 1, [label])
            by_shape[key] = layer
            result.layers.append(layer)
    integer = [l.name for l in result.layers if str(l.fields.get("note", "")).startswith("ConvInteger")]
    if integer:
        shown = ", ".join(integer[:4]) + (", ..." if len(integer) > 4 else "")
        result.notes.append(f"{len(integer)} ConvInteger layer(s) ({shown}) have no output requantization in the "
                            "model (int32 output); imported as u8s8 layers of the same shape")
    return result


def _skip_subgraph_convs(node: Any, label: str, skipped: list[Skipped]) -> None:
    """Convs inside an If/Loop/Scan body run a data-dependent number of times: listed, not imported."""
    def walk(graph: Any) -> None:
        for i, inner in enumerate(graph.node):
            if inner.op_type in ("Conv", *OTHER_CONVS, *QUANTIZED_CONVS):
                skipped.append(Skipped(f"{label}/{_node_label(inner, i)}", inner.op_type,
                                       f"inside a subgraph of {node.op_type} node {label!r} "
                                       "(runs a data-dependent number of times)"))
            for attr in inner.attribute:
                for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    walk(g)

    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            walk(g)


