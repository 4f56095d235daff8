"""YAML config -> validated sweep: layers x layouts x dtypes x algorithms x threads.

A config file (every key is optional except that some layer must exist)::

    name: mobilenet              # results go to results/<name>/<timestamp>/
    network: MobileNet v1        # default 'network' column of every layer
    description: free text
    seed: 0                      # inputs are spec.random_inputs(seed)
    algorithms: all              # or a list of registered names
    baseline: im2col             # speedup_vs_baseline is relative to it
    threads: [1, 2]              # an int or a list: one case per count
    plugins: [my_algos.py]       # modules / files that register algorithms
    defaults:                    # any layer field, applied to every layer
      batch: 1
      layout: [nchw, nhwc]       # lists of layouts / dtypes are sweep dimensions
      dtype: float32
    timing: {min_samples: 20, min_time_s: 0.5, max_time_s: 10, target_ci: 0.05}
    layers:                      # explicit layers, in order
      - {name: conv1, in_channels: 3, out_channels: 32, size: 224,
         kernel: 3, stride: 2, padding: 1, count: 1}
    sweeps:                      # cartesian grids, expanded after the layers
      - name: g3x3
        layer_class: 3x3
        kernel: 3
        grid: {stride: [1, 2], padding: [0, 1], channels: [32, 64], size: [14, 28]}

Layer fields (in ``layers``, ``defaults``, a sweep, or a sweep's ``grid``):
``batch, in_channels, out_channels, channels`` (sets both), ``height, width,
size`` (sets both), ``kernel, stride, dilation`` (int or [h, w]), ``padding``
(int, [ph, pw] or [top, bottom, left, right]), ``groups``, ``depthwise``
(true: groups = in_channels, out_channels defaults to in_channels),
``layout, dtype`` (a value or a list), ``count`` (occurrences in the
network, for weighted totals), ``layer_class``, ``network``, ``note``.

Every problem raises :class:`ConfigError` whose message names the file, the
layer or grid, the field, and the nearest valid key for a typo.
"""

from __future__ import annotations

import difflib
import fnmatch
import itertools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..spec import DTYPES, LAYOUTS, ConvSpec
from ..timing import TimingSettings


class ConfigError(Exception):
    """A config cannot be used; the message says where and how to fix it."""


# -- field types -------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_int(v: Any, minimum: int, what: str = "an int") -> int:
    if not _is_int(v) or v < minimum:
        raise ValueError(f"must be {what} >= {minimum}, got {v!r}")
    return v


def _int_or_pair(v: Any, minimum: int) -> Any:
    if _is_int(v) and v >= minimum:
        return v
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(i) and i >= minimum for i in v):
        return list(v)
    raise ValueError(f"must be an int >= {minimum} or a pair [h, w] of them, got {v!r}")


def _padding(v: Any) -> Any:
    if _is_int(v) and v >= 0:
        return v
    if isinstance(v, (list, tuple)) and len(v) in (2, 4) and all(_is_int(i) and i >= 0 for i in v):
        return list(v)
    raise ValueError(
        "must be an int >= 0, a pair [ph, pw] or [top, bottom, left, right], " f"got {v!r}"
    )


def _choices(v: Any, allowed: tuple[str, ...], what: str) -> Any:
    values = v if isinstance(v, list) else [v]
    if not values:
        raise ValueError(f"must name at least one {what}")
    out = []
    for item in values:
        if not isinstance(item, str) or item.lower() not in allowed:
            hint = _did_you_mean(str(item).lower(), allowed)
            raise ValueError(f"must be one of {', '.join(allowed)} (or a list of them), got {item!r}{hint}")
        out.append(item.lower())
    return out if isinstance(v, list) else out[0]


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f". Did you mean {match[0]!r}?" if match else ""


class LayerFields(BaseModel):
    """Fields a layer, the defaults, a sweep or a grid may set."""

    model_config = ConfigDict(extra="forbid")

    batch: int | None = None
    in_channels: int | None = None
    out_channels: int | None = None
    channels: int | None = None
    height: int | None = None
    width: int | None = None
    size: int | None = None
    kernel: Any = None
    stride: Any = None
    dilation: Any = None
    padding: Any = None
    groups: int | None = None
    depthwise: bool | None = None
    layout: Any = None
    dtype: Any = None
    count: int | None = None
    layer_class: str | None = None
    network: str | None = None
    note: str | None = None

    @field_validator(
        "batch", "in_channels", "out_channels", "channels", "height", "width", "size",
        "groups", "count", mode="before",
    )
    @classmethod
    def _pos_int(cls, v: Any) -> Any:
        return v if v is None else _check_int(v, 1)

    @field_validator("kernel", "stride", "dilation", mode="before")
    @classmethod
    def _pair(cls, v: Any) -> Any:
        return v if v is None else _int_or_pair(v, 1)

    @field_validator("padding", mode="before")
    @classmethod
    def _pad(cls, v: Any) -> Any:
        return v if v is None else _padding(v)

    @field_validator("depthwise", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, bool):
            raise ValueError(f"must be true or false, got {v!r}")
        return v

    @field_validator("layout", mode="before")
    @classmethod
    def _layout(cls, v: Any) -> Any:
        return v if v is None else _choices(v, LAYOUTS, "layout")

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, v: Any) -> Any:
        return v if v is None else _choices(v, DTYPES, "dtype")

    @field_validator("layer_class", "network", "note", mode="before")
    @classmethod
    def _str(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, (str, int, float)):
            raise ValueError(f"must be a string, got {v!r}")
        return v if v is None else str(v)

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


LAYER_FIELDS = tuple(LayerFields.model_fields)


class LayerModel(LayerFields):
    name: str

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: Any) -> Any:
        if not isinstance(v, (str, int)) or str(v).strip() == "":
            raise ValueError(f"must be a non-empty string, got {v!r}")
        return str(v)


class SweepModel(LayerFields):
    """A cartesian grid: every combination of the ``grid`` lists is one layer."""

    name: str
    grid: dict[str, list[Any]]
    name_template: str | None = None
    drop_invalid: bool = False

    @model_validator(mode="after")
    def _grid(self) -> "SweepModel":
        if not self.grid:
            raise ValueError("grid must have at least one field with a list of values")
        for key, values in self.grid.items():
            if key not in LAYER_FIELDS:
                raise ValueError(f"unknown field {key!r} in 'grid'{_did_you_mean(key, LAYER_FIELDS)}")
            if not values:
                raise ValueError(f"'grid' field {key!r} has an empty list")
            for value in values:
                try:
                    LayerFields(**{key: value})
                except ValidationError as exc:
                    msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
                    raise ValueError(f"'grid' field {key!r}: {msg}") from None
        return self


class TimingModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_samples: int = Field(default=TimingSettings.min_samples, ge=1, strict=True)
    min_time_s: float = Field(default=TimingSettings.min_time_s, ge=0)
    max_time_s: float = Field(default=TimingSettings.max_time_s, gt=0)
    target_ci: float | None = Field(default=TimingSettings.target_ci, gt=0)
    min_sample_time_s: float = Field(default=TimingSettings.min_sample_time_s, ge=0)
    warmup: int = Field(default=TimingSettings.warmup, ge=1, strict=True)
    confidence: float = Field(default=TimingSettings.confidence, gt=0, lt=1)

    def settings(self) -> TimingSettings:
        return TimingSettings(**self.model_dump())


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    network: str | None = None
    description: str | None = None
    seed: int = Field(default=0, ge=0, strict=True)
    algorithms: Literal["all"] | list[str] = "all"
    baseline: str | None = "im2col"
    threads: list[int] = Field(default_factory=lambda: [1])
    plugins: list[str] = Field(default_factory=list)
    defaults: LayerFields = Field(default_factory=LayerFields)
    timing: TimingModel = Field(default_factory=TimingModel)
    layers: list[LayerModel] = Field(default_factory=list)
    sweeps: list[SweepModel] = Field(default_factory=list)

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, v: Any) -> Any:
        values = v if isinstance(v, list) else [v]
        if not values:
            raise ValueError("must list at least one thread count")
        for t in values:
            _check_int(t, 1, "a thread count (int)")
        return values

    @field_validator("algorithms", mode="before")
    @classmethod
    def _algorithms(cls, v: Any) -> Any:
        if v == "all":
            return v
        values = [v] if isinstance(v, str) else v
        if not isinstance(values, list) or not values or not all(isinstance(a, str) for a in values):
            raise ValueError(f"must be 'all' or a list of algorithm names, got {v!r}")
        return values

    @model_validator(mode="after")
    def _some_layers(self) -> "ConfigModel":
        if not self.layers and not self.sweeps:
            raise ValueError("the config has no 'layers' and no 'sweeps': nothing to run")
        return self


# -- the expanded sweep --------------------------------------------------------

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
    extra_notes: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.model.seed

    @property
    def threads(self) -> list[int]:
        return list(self.model.threads)

    @property
    def baseline(self) -> str | None:
        return self.model.baseline

    def algorithm_names(self) -> list[str]:
        """The algorithms to run, checked against the registry (baseline included)."""
        return resolve_algorithms(self.model.algorithms, self.model.baseline, self.path)

    def select_layers(self, patterns: str | None) -> "Config":
        """A copy with only layers whose name matches one of the comma-separated globs."""
        if not patterns:
            return self
        globs = [p.strip() for p in patterns.split(",") if p.strip()]
        kept = [l for l in self.layers if any(fnmatch.fnmatchcase(l.name, g) for g in globs)]
        if not kept:
            names = ", ".join(l.name for l in self.layers[:8])
            more = ", ..." if len(self.layers) > 8 else ""
            raise ConfigError(f"{self.path}: no layer matches {patterns!r}. Layers: {names}{more}")
        return Config(self.name, self.path, self.model, kept, self.timing, self.extra_notes)

    def as_run(self, algorithms: list[str], threads: list[int], timing: TimingSettings) -> dict[str, Any]:
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
            "plugins": list(m.plugins),
            "timing": timing.to_dict(),
            "layers": [layer.to_yaml_dict() for layer in self.layers],
        }


def resolve_algorithms(requested: Any, baseline: str | None, where: str = "config") -> list[str]:
    """Registered names for ``requested`` ('all', a list, or 'a,b'); the baseline is added."""
    from ..registry import list_algorithms

    known = list_algorithms()
    if requested in (None, "all"):
        names = list(known)
    else:
        names = [a.strip() for a in requested.split(",")] if isinstance(requested, str) else list(requested)
        names = [a for a in names if a]
        for a in names:
            if a not in known:
                raise ConfigError(
                    f"{where}: unknown algorithm {a!r}{_did_you_mean(a, known) or '.'} "
                    f"Known algorithms: {', '.join(known) or '(none registered)'}."
                )
    if baseline:
        if baseline not in known:
            raise ConfigError(
                f"{where}: field 'baseline': unknown algorithm {baseline!r}"
                f"{_did_you_mean(baseline, known) or '.'} Known algorithms: {', '.join(known) or '(none)'}."
            )
        if baseline not in names:
            names.insert(0, baseline)
    return list(dict.fromkeys(names))


# -- loading -----------------------------------------------------------------


def default_config_text() -> str:
    """The embedded default sweep (``convbench run`` with no argument)."""
    return resources.files("convbench").joinpath("data/default.yaml").read_text()


def _installed_configs() -> Path | None:
    """The configs shipped inside the package (``convbench/configs/``, copied there by
    setup.py's build hook), so config names work after a non-editable install."""
    try:
        folder = resources.files("convbench").joinpath("configs")
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - zipped or odd installs
        return None
    path = Path(str(folder))
    return path if path.is_dir() else None


def config_folders() -> list[Path]:
    """Where a bare config name is looked up, in order: ``./configs``, the checkout's
    ``configs/`` (editable installs), the package's own copy."""
    repo_configs = Path(__file__).resolve().parents[2] / "configs"
    folders = [Path("configs"), repo_configs, _installed_configs()]
    return [f for f in dict.fromkeys(folders) if f is not None]


def find_config(target: str | Path) -> Path:
    """A config path, or a bare name (``mobilenet``) found in :func:`config_folders`."""
    path = Path(target)
    if path.is_file():
        return path
    bare = not path.suffix and len(path.parts) == 1
    folders = config_folders() if bare else [path.parent]
    if bare:
        for folder in folders:
            candidate = folder / f"{path.name}.yaml"
            if candidate.is_file():
                return candidate
    # Compare stems: every config ends in ".yaml", and that shared suffix alone made
    # "configs/nope.yaml" look close to "smoke.yaml".
    stems = sorted({p.stem for folder in folders if folder.is_dir()
                    for p in folder.iterdir() if p.suffix in (".yaml", ".yml")})
    match = difflib.get_close_matches(path.stem, stems, n=1, cutoff=0.6)
    if match:
        suggestion = match[0] if bare else match[0] + path.suffix
        hint = f". Did you mean {suggestion!r}?"
    elif stems:
        hint = f". Configs{'' if bare else f' in {path.parent}'}: {', '.join(stems)}"
    else:
        hint = ""
    raise ConfigError(f"{target}: no such config file{hint}")


def load_config(target: str | Path | None = None) -> Config:
    """Read, validate and expand a config file (``None``: the embedded default)."""
    if target is None:
        return parse_config(default_config_text(), "<default sweep>", default_name="default")
    path = find_config(target)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_config(text, str(path), default_name=path.stem, base_dir=path.parent)


def _plugin_target(plugin: str, base_dir: Path | None) -> str:
    """A plugin file path relative to the config's folder, made absolute; module names as given."""
    looks_like_file = plugin.endswith(".py") or "/" in plugin or "\\" in plugin
    if base_dir is None or not looks_like_file or Path(plugin).is_absolute():
        return plugin
    return str((base_dir / plugin).resolve())


def parse_config(
    text: str, where: str = "<config>", default_name: str = "config", base_dir: Path | None = None
) -> Config:
    """Validate and expand config text; ``where`` names it in error messages.

    Plugin files in ``plugins:`` are relative to ``base_dir`` (the config's folder).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}{at}: malformed YAML: {problem}") from None
    if raw is None:
        raise ConfigError(f"{where}: the config is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the config must be a mapping of keys (name, layers, ...), got {type(raw).__name__}")
    try:
        model = ConfigModel.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, raw, node, where)) from None
    model.plugins = [_plugin_target(p, base_dir) for p in model.plugins]
    for plugin in model.plugins:
        from ..registry import PluginError, load_plugin

        try:
            load_plugin(plugin)
        except PluginError as exc:
            raise ConfigError(f"{where}: field 'plugins': {exc}") from None
    layers = _expand(model, where, node)
    if not layers:
        raise ConfigError(
            f"{where}: the sweep is empty: every grid combination was dropped as invalid (drop_invalid); "
            "widen the grids or add 'layers'"
        )
    return Config(model.name or default_name, where, model, layers, model.timing.settings())


def _explain(exc: ValidationError, raw: dict, node: Any, where: str) -> str:
    """The first pydantic error as 'file, line N: layer 'x': field 'y': problem'."""
    lines = []
    for err in exc.errors()[:3]:
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        context, field_path = _describe_loc(loc, raw)
        kind = err["type"]
        line = _line_of(node, loc)
        at = f", line {line}" if line else ""
        if kind == "extra_forbidden":
            key = str(loc[-1])
            options = _keys_for(loc[:-1])
            problem = f"unknown field {key!r}{_did_you_mean(key, options)}"
            if not problem.endswith("?"):
                problem += f". Valid fields: {', '.join(options)}"
        elif kind == "missing":
            problem = f"field {field_path!r} is required"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problem = f"field {field_path!r}: {msg}" if field_path else msg
            if kind not in ("value_error",) and "input" in err and not isinstance(err["input"], dict):
                problem += f" (got {err['input']!r})"
        lines.append(f"{where}{at}: {context}{problem}")
    return "\n".join(lines)


def _describe_loc(loc: list, raw: dict) -> tuple[str, str]:
    """('layer 'conv1' (layers[0]): ', 'kernel') for a pydantic loc."""
    if len(loc) >= 2 and loc[0] in ("layers", "sweeps") and isinstance(loc[1], int):
        kind = "layer" if loc[0] == "layers" else "grid"
        item = raw.get(loc[0])
        name = None
        if isinstance(item, list) and loc[1] < len(item) and isinstance(item[loc[1]], dict):
            name = item[loc[1]].get("name")
        label = f"{kind} {name!r} ({loc[0]}[{loc[1]}])" if name is not None else f"{loc[0]}[{loc[1]}]"
        return f"{label}: ", ".".join(str(p) for p in loc[2:])
    if loc and loc[0] in ("defaults", "timing"):
        return f"{loc[0]}: ", ".".join(str(p) for p in loc[1:])
    return "", ".".join(str(p) for p in loc)


def _keys_for(parent: list) -> list[str]:
    if not parent:
        return list(ConfigModel.model_fields)
    if parent[0] == "timing":
        return list(TimingModel.model_fields)
    if parent[0] == "defaults":
        return list(LayerFields.model_fields)
    if parent[0] == "layers":
        return list(LayerModel.model_fields)
    if parent[0] == "sweeps":
        return list(SweepModel.model_fields)
    return []


def _line_of(node: Any, loc: list) -> int | None:
    """1-based line of the YAML node at ``loc`` (or its nearest parent)."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    nxt = k if part == loc[-1] else v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        node = nxt
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _expand(model: ConfigModel, where: str, node: Any = None) -> list[Layer]:
    def at(*loc: Any) -> str:
        line = _line_of(node, list(loc)) if node is not None else None
        return f"{where}, line {line}" if line else where

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


def dump_config(data: dict[str, Any], header: str = "") -> str:
    """YAML text of a config dict (used for ``config.yaml`` of a results folder)."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _list(dumper: yaml.SafeDumper, value: list) -> Any:
        flow = all(not isinstance(v, (dict, list)) for v in value)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)

    _Dumper.add_representer(list, _list)
    _Dumper.add_representer(tuple, lambda d, v: _list(d, list(v)))
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100)
    return (header + text) if header else text
