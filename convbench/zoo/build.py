"""The zoo as one sweep: every distinct convolution shape of the chosen networks once, credited to each.

:func:`build_zoo` imports each network with :func:`convbench.onnx_import.import_onnx`
(which already merges a network's repeated shapes into one layer with a
``count``) and merges again across networks: a shape two networks share is
one layer, measured once, whose ``count`` is its occurrences in all of them
and whose ``network`` column says how often each network has it, as
:func:`format_credits` writes it (``zoo:densenet121=1,resnet50=1``). The
credits travel in every row of the results, so a network's total is a sum
over the rows alone (:mod:`convbench.analysis.zoo`), in a merged, sharded or
resumed folder as in a fresh one.

A layer is named after the first network that has it (``resnet50_n8``: the
network's key, then the node the importer named it after; not ``/``, which
names a sweep grid's family in the figures); its
``layer_class`` adds the stride to the importer's class (``3x3/s1``,
``dw3x3/s2``, ``g1x1/s1``, ``11x11/s4``), the classes the zoo's verdicts are
per. :meth:`Zoo.config_text` writes the sweep as a config, which
``convbench zoo`` runs through ``convbench run``; :meth:`Zoo.manifest` is
what ``zoo.json`` keeps beside the results (each network's layers, its
convolution count and FLOPs), so a network whose layers were not all
measured is told apart from one that was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .networks import NETWORKS, Network, ZooError, model_path, models_folder

#: Marks a row's ``network`` column as zoo credits.
CREDIT_PREFIX = "zoo:"
#: The zoo config's name (results go to results/zoo/<timestamp>/ by default).
CONFIG_NAME = "zoo"
#: ``--quick``'s own algorithms (the peers are added where installed): the paper's pairs
#: (indirect, im2col, im2col-numba, Winograd, FFT) and the other fast contenders. Left out:
#: ``naive`` (the correctness baseline, 5-30x slower than the rest: it picks nothing) and
#: ``winograd-f6`` (F(4x4) covers the larger-tile Winograd at a tighter tolerance).
QUICK_ALGORITHMS = ("im2col", "im2col-numba", "indirect", "gemm-direct", "winograd", "winograd-f4", "fft",
                    "direct-blocked")
#: ``--quick``'s memory cap per case (``convbench run --memory-limit``; a later --memory-limit wins).
#: It skips (as ``skipped`` rows that say so) FFT on the 40 zoo layers whose spectra of every
#: kernel pair at the input's size pass it: their ``prepare`` alone takes 3-13 s each on a 2-vCPU
#: Zen 4 (1-2 GB of spectra), more than the rest of the quick run together. No other built-in needs it.
QUICK_MEMORY_LIMIT = "160MiB"
#: The layouts the zoo measures unless asked (the paper's, and indirect convolution's own).
DEFAULT_LAYOUTS = ("nhwc",)


def format_credits(credits: dict[str, int]) -> str:
    """``{"densenet121": 1, "resnet50": 1}`` -> ``"zoo:densenet121=1,resnet50=1"``."""
    return CREDIT_PREFIX + ",".join(f"{k}={int(v)}" for k, v in credits.items())


def parse_credits(text: Any) -> dict[str, int]:
    """The credits of a row's ``network`` column (``{}`` for a row that is not a zoo layer)."""
    if not isinstance(text, str) or not text.startswith(CREDIT_PREFIX):
        return {}
    out: dict[str, int] = {}
    for part in text[len(CREDIT_PREFIX):].split(","):
        key, _, count = part.partition("=")
        try:
            n = int(count)
        except ValueError:
            raise ValueError(f"network column {text!r}: {part!r} is not NETWORK=COUNT") from None
        if key.strip() and n > 0:
            out[key.strip()] = out.get(key.strip(), 0) + n
    return out


def zoo_class(fields: dict[str, Any]) -> str:
    """The importer's layer class with the stride: ``3x3`` stride 2 -> ``3x3/s2``."""
    stride = fields.get("stride", 1)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    return f"{fields['layer_class']}/s{sh}" + ("" if sh == sw else f"x{sw}")


@dataclass
class ZooLayer:
    """One distinct shape of the zoo and who has it."""

    name: str
    fields: dict[str, Any]  # config layer fields: shape, layer_class (name, count, network excluded)
    credits: dict[str, int]  # network key -> occurrences in that network
    nodes: dict[str, list[str]]  # network key -> its nodes of this shape

    @property
    def count(self) -> int:
        return sum(self.credits.values())


@dataclass
class NetworkInfo:
    """One network as imported: what ``zoo.json`` keeps of it."""

    key: str
    title: str
    file: str
    convs: int  # convolution nodes imported
    layers: list[str] = field(default_factory=list)  # the zoo layers it has (distinct shapes)
    gflop: float = 0.0  # direct-equivalent GFLOP of one inference, its convolutions only
    not_imported: list[str] = field(default_factory=list)  # convolutions the importer skipped, with why


@dataclass
class Zoo:
    """The chosen networks' convolutions as one deduplicated sweep."""

    layers: list[ZooLayer]
    networks: list[NetworkInfo]
    onnx_version: str = ""
    folder: str = ""

    @property
    def shared(self) -> list[ZooLayer]:
        """Layers of more than one network (measured once, credited to each)."""
        return [layer for layer in self.layers if len(layer.credits) > 1]

    def manifest(self) -> dict[str, Any]:
        """What ``zoo.json`` holds: the onnx version, and per network its layers, convolutions and GFLOP."""
        return {"onnx": self.onnx_version, "models": self.folder,
                "networks": {n.key: {"title": n.title, "file": n.file, "convs": n.convs, "layers": n.layers,
                                     "gflop": round(n.gflop, 6), "not_imported": n.not_imported}
                             for n in self.networks}}

    def config_text(self, *, algorithms: list[str] | None = None, layouts: list[str] | None = None,
                    dtype: list[str] | str = "float32", threads: list[int] | None = None) -> str:
        """The zoo as a config: a header comment, the settings, one flow-style line per layer."""
        import yaml

        from ..config import dump_config

        def flow(data: dict[str, Any]) -> str:  # one layer a line, as `convbench import` writes them
            return yaml.safe_dump(data, default_flow_style=True, sort_keys=False, width=10_000).strip()

        keys = ", ".join(n.key for n in self.networks)
        lines = [
            f"# The convbench zoo, generated by `convbench zoo` from the onnx {self.onnx_version} package's",
            f"# backend test graphs ({self.folder}): {keys}.",
            f"# {len(self.layers)} distinct convolution shapes ({sum(l.count for l in self.layers)} convolutions);",
            f"# {len(self.shared)} shapes occur in more than one network: measured once, credited to each.",
            "# `network` holds the credits: zoo:NETWORK=OCCURRENCES,...; `count` is their sum.",
        ]
        head = {"name": CONFIG_NAME, "network": "zoo",
                "description": f"{len(self.networks)} networks of the onnx package's test data: "
                               f"{len(self.layers)} distinct conv shapes", "seed": 0,
                "algorithms": list(algorithms) if algorithms else "all", "baseline": "im2col",
                "threads": list(threads or [1])}
        body = dump_config(head) + "defaults:\n  batch: 1\n"
        dtypes = [dtype] if isinstance(dtype, str) else list(dtype)
        body += f"  layout: [{', '.join(layouts or DEFAULT_LAYOUTS)}]\n  dtype: [{', '.join(dtypes)}]\nlayers:\n"
        for layer in self.layers:
            fields = {"name": layer.name, **{k: v for k, v in layer.fields.items() if k != "batch"}}
            if layer.count > 1:
                fields["count"] = layer.count
            fields["network"] = format_credits(layer.credits)
            fields["note"] = "; ".join(f"{k} {', '.join(v[:3])}" + (f" +{len(v) - 3}" if len(v) > 3 else "")
                                       for k, v in layer.nodes.items())
            body += f"  - {flow(fields)}\n"
        return "\n".join(lines) + "\n" + body


def build_zoo(networks: list[Network] | None = None, folder: Path | None = None) -> Zoo:
    """Import ``networks`` (default: all nine) and merge their shapes (the module docstring)."""
    from ..onnx_import import OnnxImportError, import_onnx

    folder = folder or models_folder()
    by_shape: dict[tuple, ZooLayer] = {}
    infos = []
    for net in networks or NETWORKS:
        try:
            imported = import_onnx(model_path(net, folder))
        except OnnxImportError as exc:
            raise ZooError(f"{net.title}: {exc}") from None
        info = NetworkInfo(net.key, net.title, net.file, sum(l.count for l in imported.layers),
                           not_imported=[f"{s.node} ({s.op_type}): {s.reason}" for s in imported.skipped])
        for layer in imported.layers:
            fields = {k: v for k, v in layer.fields.items() if k != "note"}
            fields["layer_class"] = zoo_class(fields)
            if fields.get("batch", 1) != 1:
                raise ZooError(f"{net.title}: layer {layer.name} has batch {fields['batch']}; the zoo is batch 1")
            key = tuple(sorted((k, str(v)) for k, v in fields.items()))
            zl = by_shape.get(key)
            if zl is None:
                zl = by_shape[key] = ZooLayer(f"{net.key}_{layer.name}", fields, {}, {})
            zl.credits[net.key] = zl.credits.get(net.key, 0) + layer.count
            zl.nodes.setdefault(net.key, []).extend(layer.nodes)
            if zl.name not in info.layers:
                info.layers.append(zl.name)
        infos.append(info)
    zoo = Zoo(list(by_shape.values()), infos, _onnx_version(), str(folder))
    flops = layer_flops(zoo)
    for info in infos:
        info.gflop = sum(flops[l.name] * l.credits.get(info.key, 0) for l in zoo.layers) / 1e9
    return zoo


def layer_flops(zoo: Zoo) -> dict[str, int]:
    """Direct-equivalent FLOPs of one call of each zoo layer (its config, parsed as ``run`` would)."""
    from ..config import parse_config

    config = parse_config(zoo.config_text(algorithms=["im2col"]), "<zoo>", default_name=CONFIG_NAME)
    return {layer.name: layer.spec().flops for layer in config.layers}


def _onnx_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("onnx")
    except PackageNotFoundError:
        return "?"


def default_algorithms(quick: bool, dtypes: list[str]) -> list[str]:
    """The zoo's algorithms: every built-in (plugins only when asked with -a) that runs one of
    ``dtypes``; ``quick``: :data:`QUICK_ALGORITHMS` and the peers."""
    from ..registry import BUILTIN_MODULES, get_algorithm, list_algorithms, source_of

    names = [n for n in list_algorithms() if source_of(n) in BUILTIN_MODULES
             and set(getattr(get_algorithm(n), "dtypes", ())) & set(dtypes)]
    if quick:
        names = [n for n in names if n in QUICK_ALGORITHMS or getattr(get_algorithm(n), "peer", False)]
    if not names:
        raise ZooError(f"no built-in algorithm runs {', '.join(dtypes)}")
    return names
