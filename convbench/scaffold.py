"""``convbench new-plugin``: write a commented, working plugin skeleton.

The skeleton is a correct (if unhurried) algorithm, so it passes
``convbench verify --plugin FILE`` as written; its author then replaces the
body of ``prepare`` with their idea and keeps the checks green.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

_TEMPLATE = Template('''"""$name: a convbench algorithm plugin.

Try it:
    convbench list --plugin $filename
    convbench verify --plugin $filename -a $name
    convbench run smoke --plugin $filename --algorithms $name,im2col

Replace the body of ``prepare`` with your algorithm; keep ``verify`` green.
"""

from __future__ import annotations

import numpy as np

import convbench
from convbench.layouts import adapt


@convbench.register
class $class_name(convbench.Algorithm):
    # The name used on the command line and in every results table.
    name = "$name"
    # One line for `convbench list`.
    description = "shift-and-add: one channel contraction per kernel tap (numpy)"
    # The layout the computation is written for; `adapt` converts the other
    # one inside the timed call, so that cost is counted as for built-ins.
    natural_layout = "nchw"
    # Max relative error against the float64 reference that counts as correct.
    tolerance = {"float32": 1e-4, "float64": 1e-10}

    def supports(self, spec: convbench.ConvSpec) -> str | None:
        """None if `spec` can run, else a short reason (becomes a `skipped` row)."""
        return None

    def workspace_bytes(self, spec: convbench.ConvSpec) -> int:
        """Extra memory of one call beyond input, weights and output: the padded input."""
        hp = spec.height + spec.pad_top + spec.pad_bottom
        wp = spec.width + spec.pad_left + spec.pad_right
        return spec.batch * spec.in_channels * hp * wp * spec.itemsize

    def prepare(self, spec: convbench.ConvSpec, weight: np.ndarray):
        """Input-independent work (untimed by the sweep's per-call clock), then the call.

        convbench's guard has already checked `weight` (spec.weight_shape,
        spec.dtype, finite, C-contiguous) and will check every `x` before
        `call` sees it; nothing is converted, so don't cast here either.
        """
        g, cg, kg = spec.groups, spec.channels_per_group, spec.out_channels_per_group
        w = weight.reshape(g, kg, cg, spec.kernel_h, spec.kernel_w)
        (top, bottom, left, right), (sh, sw), (dh, dw) = spec.padding, spec.stride, spec.dilation
        oh, ow = spec.output_height, spec.output_width

        def call(x: np.ndarray) -> np.ndarray:
            # x is NCHW here (adapt converted it); return a new NCHW array.
            n = x.shape[0]
            xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
            xp = xp.reshape(n, g, cg, xp.shape[2], xp.shape[3])
            y = np.zeros((n, g, kg, oh, ow), spec.dtype)
            for r in range(spec.kernel_h):
                for s in range(spec.kernel_w):
                    patch = xp[..., r * dh : r * dh + (oh - 1) * sh + 1 : sh,
                                    s * dw : s * dw + (ow - 1) * sw + 1 : sw]
                    y += np.einsum("ngchw,gkc->ngkhw", patch, w[..., r, s])
            return y.reshape(n, g * kg, oh, ow)

        # Optional: declare the call's phases, and `convbench run` also times each
        # step on the intermediate it receives (phases.csv says where the time goes).
        # Split `call` into steps that each take the previous step's result, e.g.
        #
        #     def pack(x):     # a padded copy of the input
        #         xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        #         return xp.reshape(x.shape[0], g, cg, xp.shape[2], xp.shape[3])
        #
        #     def gemm(xp):    # the multiply-accumulate core: the tap loop above
        #         ...
        #
        #     call = convbench.phased(("pack", pack), ("gemm", gemm))
        #
        # Phases: pack, transform_in, gemm, transform_out, other. A step must not
        # modify the array it is given (it is fed the same one many times) and
        # the steps run one by one must give the call's answer (`verify` checks).
        # `adapt` adds the layout conversions as steps. A plain call, as here, is
        # one `other` phase.
        return adapt(call, spec.layout, self.natural_layout)
''')


def plugin_identifiers(name: str) -> tuple[str, str]:
    """(module file stem, class name) for an algorithm name like ``my-algo``."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise ValueError(
            f"Plugin name {name!r} must start with a letter and contain only letters, digits, '-' and '_'."
        )
    stem = name.replace("-", "_").lower()
    class_name = "".join(part.capitalize() for part in re.split(r"[-_]", name) if part)
    if keyword.iskeyword(stem):
        stem += "_plugin"
    return stem, class_name


def write_plugin_skeleton(name: str, out: Path | None = None) -> Path:
    """Write the skeleton for algorithm ``name`` to ``out`` (default ``./<name>.py``).

    Refuses to overwrite an existing file.
    """
    stem, class_name = plugin_identifiers(name)
    path = Path(out) if out is not None else Path(f"{stem}.py")
    if path.is_dir():
        path = path / f"{stem}.py"
    if path.exists():
        raise FileExistsError(f"{path} already exists; choose another --out or remove it.")
    path.write_text(_TEMPLATE.substitute(name=name, class_name=class_name, filename=path.name))
    return path
