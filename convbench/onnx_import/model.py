"""Reading an ONNX model safely, and the shapes of its inputs.

What :func:`convbench.onnx_import.import_onnx` finds is described by the
dataclasses here; :func:`load` refuses what a shared model must not do
(a file over the size limit, external data outside the model's folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_SIZE = 1 << 30  # 1 GiB

#: Convolution op types that are not 2-D ``Conv`` and why each cannot be a layer.
OTHER_CONVS = {
    "ConvTranspose": "transposed convolution (ConvTranspose) is not a convbench layer",
    "DeformConv": "deformable convolution is not a convbench layer",
    "FusedConv": "ONNX Runtime contrib op FusedConv: export the unoptimized model to import its Conv",
    "NhwcConv": "ONNX Runtime contrib op NhwcConv: export the unoptimized model to import its Conv",
}


#: The 8-bit convolutions imported as ``u8s8`` layers: op type -> (index of X, index of W) in its inputs.
QUANTIZED_CONVS = {"QLinearConv": (0, 3), "ConvInteger": (0, 1)}
#: Why a quantized convolution of another domain is not imported (ONNX Runtime's optimized graphs).
CONTRIB_QUANTIZED = ("ONNX Runtime contrib op {op} (an optimized, possibly channels-last graph): export the "
                     "unoptimized model to import its QLinearConv")


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


def load(path: Path, max_size: int) -> Any:
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
        from ..machine.memory import format_size

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


def dims_of(value_info: Any) -> list[Any] | None:
    """The shape of a value as ints (known) and strings/None (symbolic, unknown); None: no shape."""
    t = value_info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim]


def set_inputs(model: Any, path: Path, batch: int | None,
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
        dims = dims_of(vi)
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


