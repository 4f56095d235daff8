"""``convbench import``: a network's convolutions from an ONNX model, as a config.

The logic is :mod:`convbench.onnx_import`; this command parses, calls, and
writes or prints what it got back.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app, err_console, fail, option_error


@app.command("import")
def import_cmd(
    model: str = typer.Argument(..., help="An ONNX model file (.onnx)."),
    out: str = typer.Option(None, "--out", "-o", help="Config YAML to write (default: print it)."),
    batch: int = typer.Option(None, "--batch", help="Batch size: replaces the first dimension of every model input (a symbolic one is otherwise set to 1)."),
    input_shape: list[str] = typer.Option(None, "--input-shape", help="A whole input shape, NAME:1,3,224,224 (or 1,3,224,224 for a model with one input); repeatable. For symbolic spatial dimensions."),
    max_size: str = typer.Option(None, "--max-size", help="Read model files up to this size (default 1GiB), e.g. 4GiB."),
    name: str = typer.Option(None, "--name", help="The config's name (default: the model file's name)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
) -> None:
    """Write a convbench config with every distinct 2-D convolution of an ONNX model.

    Layers it cannot express (3-D convs, ConvTranspose, unresolved dynamic
    shapes, ...) are listed with the reason on stderr and in a comment at the
    top of the config.
    """
    from ..machine.memory import parse_size
    from ..onnx_import import DEFAULT_MAX_SIZE, OnnxImportError, import_onnx, render_config

    try:
        limit = parse_size(max_size) or DEFAULT_MAX_SIZE
    except ValueError as exc:
        option_error("--max-size", exc)
    try:
        result = import_onnx(model, batch=batch, input_shapes=input_shape, max_size=limit)
    except OnnxImportError as exc:
        fail(str(exc))
    for s in result.skipped:
        err_console.print(f"[yellow]not imported:[/] {s.node} ({s.op_type}): {s.reason}", highlight=False, soft_wrap=True)
    for note in result.notes:
        err_console.print(f"note: {note}", highlight=False, soft_wrap=True)
    if not result.layers:
        fail(f"{model}: no 2-D convolution could be imported ({len(result.skipped)} listed above); no config written")
    text = render_config(result, name)
    if out is None:
        print(text, end="")
        return
    path = Path(out)
    if path.exists() and not force:
        fail(f"{path} exists; choose another --out or add --force to overwrite it")
    try:
        path.write_text(text)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    total = sum(l.count for l in result.layers)
    err_console.print(f"wrote {path}: {len(result.layers)} distinct layers ({total} convolutions)"
                      + (f", {len(result.skipped)} not imported" if result.skipped else "")
                      + f"\nnext: convbench run {path}", highlight=False, soft_wrap=True)
