"""The config text of an imported network: a header comment, then one flow-style line per layer."""

from __future__ import annotations

import re
from typing import Any

from .model import Imported

# -- writing the config -------------------------------------------------------------------------


def _flow(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, default_flow_style=True, sort_keys=False, width=10_000).strip()


def render_config(result: Imported, name: str | None = None) -> str:
    """The config text: a header comment (source, inputs, notes, skipped layers), then the layers."""
    config_name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", result.path.stem) or "imported"
    batches = {layer.fields["batch"] for layer in result.layers}
    common_batch = batches.pop() if len(batches) == 1 else None
    dtypes = {layer.fields.get("dtype", "float32") for layer in result.layers}
    common_dtype = dtypes.pop() if len(dtypes) == 1 else None  # else each 8-bit layer says dtype: u8s8
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
    from ..config import dump_config

    body = dump_config(head)
    body += "defaults:\n"
    if common_batch is not None:
        body += f"  batch: {common_batch}\n"
    body += f"  layout: [nchw, nhwc]\n  dtype: {common_dtype or 'float32'}\nlayers:\n"
    for layer in result.layers:
        fields = {"name": layer.name, **layer.fields}
        if common_batch is not None:
            fields.pop("batch")
        if common_dtype is not None:
            fields.pop("dtype", None)
        notes = [fields.pop("note")] if "note" in fields else []
        if layer.count > 1:
            fields["count"] = layer.count
            others = layer.nodes[1:]
            shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
            notes.append(f"also {shown}")
        if notes:
            fields["note"] = "; ".join(notes)
        body += f"  - {_flow(fields)}\n"
    return "\n".join(lines) + "\n" + body
