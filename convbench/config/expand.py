"""Expanding a validated config: defaults filled in, grids multiplied out, into :class:`Layer` s.

A :class:`Config` is what a sweep is planned from (:func:`convbench.sweep.plan.plan`):
its layers in order (explicit ``layers`` first, then each ``sweeps`` grid),
each with the ConvSpec of every layout x dtype variant.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
from dataclasses import dataclass
from typing import Any, Callable

from ..registry import require_algorithms
from ..spec import ConvSpec
from ..timing import TimingSettings
from .schema import ConfigError, ConfigModel, SweepModel


BUILTIN_DEFAULTS: dict[str, Any] = {
    "batch": 1, "stride": 1, "padding": 0, "dilation": 1, "groups": 1,
    "layout": "nchw", "dtype": "float32", "count": 1,
}


@dataclass(frozen=True)
class Layer:
    """One layer of the sweep; ``spec(layout, dtype)`` is the ConvSpec of one variant."""

    name: str
    network: str
    layer_class: str
    count: int
    note: str
    shape: dict[str, Any]  # ConvSpec kwargs without layout and dtype
    layouts: tuple[str, ...]
    dtypes: tuple[str, ...]

    def spec(self, layout: str | None = None, dtype: str | None = None) -> ConvSpec:
        return ConvSpec(**self.shape, layout=layout or self.layouts[0], dtype=dtype or self.dtypes[0])

    def variants(self) -> list[ConvSpec]:
        return [self.spec(lo, dt) for lo in self.layouts for dt in self.dtypes]

    def to_yaml_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        for key, value in self.shape.items():
            d[key] = list(value) if isinstance(value, tuple) else value
        d["layout"] = list(self.layouts)
        d["dtype"] = list(self.dtypes)
        d["count"] = self.count
        if self.layer_class:
            d["layer_class"] = self.layer_class
        if self.network:
            d["network"] = self.network
        if self.note:
            d["note"] = self.note
        return d


@dataclass
class Config:
    """A validated config with its layers expanded (sweeps included, in order)."""

    name: str
    path: str
    model: ConfigModel
    layers: list[Layer]
    timing: TimingSettings

    @property
    def seed(self) -> int:
        return self.model.seed

    @property
    def threads(self) -> list[int]:
        return list(self.model.threads)

    @property
    def cache(self) -> list[str]:
        return list(self.model.cache)

    @property
    def baseline(self) -> str | None:
        return self.model.baseline

    def algorithm_names(self) -> list[str]:
        """The algorithms to run, checked against the registry (baseline included)."""
        return resolve_algorithms(self.model.algorithms, self.model.baseline, self.path)

    def select_layers(self, globs: list[str] | None) -> "Config":
        """A copy with only the layers whose name matches one of ``globs`` (all when none given)."""
        if not globs:
            return self
        kept = [l for l in self.layers if any(fnmatch.fnmatchcase(l.name, g) for g in globs)]
        if not kept:
            names = ", ".join(l.name for l in self.layers[:8])
            more = ", ..." if len(self.layers) > 8 else ""
            raise ConfigError(f"{self.path}: no layer matches {', '.join(map(repr, globs))}. Layers: {names}{more}")
        return Config(self.name, self.path, self.model, kept, self.timing)

    def with_dtypes(self, dtypes: list[str] | None) -> "Config":
        """A copy whose every layer is swept over ``dtypes`` (``--dtype``; all as given when none)."""
        if not dtypes:
            return self
        from ..spec import check_field

        checked = tuple(dict.fromkeys(check_field("dtype", d) for d in dtypes))
        layers = [dataclasses.replace(layer, dtypes=checked) for layer in self.layers]
        return Config(self.name, self.path, self.model, layers, self.timing)

    def as_run(self, algorithms: list[str], threads: list[int], timing: TimingSettings,
               cache: list[str] | None = None) -> dict[str, Any]:
        """The config as run: every layer explicit, every default filled in."""
        m = self.model
        return {
            "name": self.name,
            "network": m.network,
            "description": m.description,
            "seed": m.seed,
            "algorithms": list(algorithms),
            "baseline": m.baseline,
            "threads": list(threads),
            "cache": list(cache if cache is not None else m.cache),
            "plugins": list(m.plugins),
            "timing": timing.to_dict(),
            "layers": [layer.to_yaml_dict() for layer in self.layers],
        }


def resolve_algorithms(requested: Any, baseline: str | None, where: str = "config") -> list[str]:
    """Registered names for ``requested`` ('all' or a list); the baseline is added first."""
    try:
        names = require_algorithms(None if requested in (None, "all") else
                                   [requested] if isinstance(requested, str) else list(requested))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if baseline:
        try:
            require_algorithms([baseline])
        except ValueError as exc:
            raise ConfigError(f"{where}: field 'baseline': {exc}") from None
        if baseline not in names:
            names.insert(0, baseline)
    return list(dict.fromkeys(names))


def expand(model: ConfigModel, where: str, at: Callable[..., str] | None = None) -> list[Layer]:
    """Every layer of ``model``, in order; ``at(*loc)`` names a place in the file for messages."""
    at = at or (lambda *loc: where)
    base = {**BUILTIN_DEFAULTS, "network": model.network or "", **model.defaults.given()}
    layers: list[Layer] = []
    seen: dict[str, str] = {}

    def add(layer: Layer, origin: str) -> None:
        if layer.name in seen:
            raise ConfigError(
                f"{where}: layer name {layer.name!r} is used twice ({seen[layer.name]} and {origin}); "
                "names must be unique"
            )
        seen[layer.name] = origin
        layers.append(layer)

    for i, lm in enumerate(model.layers):
        origin = f"layers[{i}]"
        fields = {**base, **lm.given()}
        add(_make_layer(fields, f"{at('layers', i)}: layer {lm.name!r} ({origin})"), origin)

    for i, sm in enumerate(model.sweeps):
        fixed = sm.model_dump(exclude_none=True, exclude={"grid", "name_template", "drop_invalid", "name"})
        keys = list(sm.grid)
        for combo in itertools.product(*(sm.grid[k] for k in keys)):
            values = dict(zip(keys, combo))
            name = _grid_name(sm, values)
            origin = f"sweeps[{i}] {sm.name!r} {values}"
            fields = {**base, **fixed, **values, "name": name}
            try:
                layer = _make_layer(fields, f"{at('sweeps', i)}: grid {sm.name!r} (sweeps[{i}]) at {values}")
            except ConfigError:
                if sm.drop_invalid:
                    continue
                raise
            add(layer, origin)
    return layers


_ABBREV = {
    "batch": "n", "in_channels": "ci", "out_channels": "co", "channels": "c", "height": "h",
    "width": "w", "size": "hw", "kernel": "k", "stride": "s", "dilation": "d", "padding": "p",
    "groups": "g", "depthwise": "dw", "layout": "", "dtype": "", "count": "x",
    "layer_class": "", "network": "", "note": "",
}


def _grid_name(sm: SweepModel, values: dict[str, Any]) -> str:
    if sm.name_template:
        flat = {k: ("x".join(map(str, v)) if isinstance(v, list) else v) for k, v in values.items()}
        try:
            return sm.name_template.format(name=sm.name, **flat)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"grid {sm.name!r}: name_template {sm.name_template!r} cannot be filled: {exc}") from None
    parts = []
    for key, value in values.items():
        text = "x".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{_ABBREV.get(key, key)}{text}")
    return f"{sm.name}/" + "_".join(parts)


def _make_layer(fields: dict[str, Any], label: str) -> Layer:
    f = dict(fields)
    for short, (a, b) in (("channels", ("in_channels", "out_channels")), ("size", ("height", "width"))):
        if short in f:
            value = f.pop(short)
            for target in (a, b):
                f.setdefault(target, value)
    if f.pop("depthwise", False):
        if "in_channels" not in f:
            raise ConfigError(f"{label}: depthwise needs 'in_channels' (or 'channels')")
        f.setdefault("out_channels", f["in_channels"])
        f["groups"] = f["in_channels"]
    missing = [k for k in ("in_channels", "out_channels", "height", "width", "kernel") if k not in f]
    if missing:
        hint = " (or 'channels')" if {"in_channels", "out_channels"} & set(missing) else ""
        hint += " (or 'size')" if {"height", "width"} & set(missing) else ""
        raise ConfigError(f"{label}: missing field(s) {', '.join(missing)}{hint}")
    layouts = tuple(f["layout"] if isinstance(f["layout"], list) else [f["layout"]])
    dtypes = tuple(f["dtype"] if isinstance(f["dtype"], list) else [f["dtype"]])
    shape_keys = ("batch", "in_channels", "out_channels", "height", "width", "kernel",
                  "stride", "padding", "dilation", "groups")
    shape = {k: tuple(f[k]) if isinstance(f[k], list) else f[k] for k in shape_keys}
    try:
        spec = ConvSpec(**shape, layout=layouts[0], dtype=dtypes[0])
    except ValueError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    shape = {k: v for k, v in shape.items()}
    shape.update(kernel=spec.kernel, stride=spec.stride, dilation=spec.dilation, padding=spec.padding)
    return Layer(
        name=str(f["name"]),
        network=str(f.get("network") or ""),
        layer_class=str(f.get("layer_class") or ""),
        count=int(f["count"]),
        note=str(f.get("note") or ""),
        shape=shape,
        layouts=tuple(dict.fromkeys(layouts)),
        dtypes=tuple(dict.fromkeys(dtypes)),
    )
