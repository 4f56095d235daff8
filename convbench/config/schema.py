"""The config file format: every key and field, validated (pydantic models).

A YAML config becomes a validated sweep: layers x layouts x dtypes x algorithms x threads.

A config file (every key is optional except that some layer must exist)::

    name: mobilenet              # results go to results/<name>/<timestamp>/
    network: MobileNet v1        # default 'network' column of every layer
    description: free text
    seed: 0                      # inputs are spec.random_inputs(seed)
    algorithms: all              # or a list of registered names
    baseline: im2col             # speedup_vs_baseline is relative to it
    threads: [1, 2]              # an int or a list: one case per count
    cache: [warm, cold]          # warm (default) and/or cold: operands evicted from every
                                 # cache level before each timed call (convbench.machine.cache)
    plugins: [my_algos.py]       # modules / files that register algorithms; loaded
                                 # only with consent (--allow-config-plugins)
    defaults:                    # any layer field, applied to every layer
      batch: 1
      layout: [nchw, nhwc]       # lists of layouts / dtypes are sweep dimensions
      dtype: float32             # float32, float64, u8s8 (8-bit, ONNX QLinearConv), or a list
    timing: {min_samples: 10, min_time_s: 0.1, max_time_s: 5, target_ci: null, repeat: 5}
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
layer or grid, the field, and the nearest valid key for a typo. Field values
are checked by :func:`convbench.spec.check_field`, the rules ConvSpec itself
applies; :mod:`.expand` turns the models into layers, :mod:`.load` reads files.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..hints import did_you_mean
from ..machine.threads import check_thread_count
from ..spec import DTYPES, LAYOUTS, SpecFieldError, check_field
from ..timing import TimingSettings


class ConfigError(Exception):
    """A config cannot be used; the message says where and how to fix it."""


# -- field types: ConvSpec's rules (spec.check_field), worded for a YAML file ----------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _spec_field(name: str, v: Any) -> Any:
    """``v`` if ConvSpec accepts it for ``name`` (kept as written: lists stay lists)."""
    try:
        check_field(name, v)
    except SpecFieldError as exc:
        raise ValueError(f"must be {exc.expected}, got {v!r}") from None
    return list(v) if isinstance(v, tuple) else v


#: Config fields that stand for a ConvSpec field (the shorthands set two).
_SPEC_FIELD_OF = {"channels": "in_channels", "size": "height"}


def _choices(v: Any, allowed: tuple[str, ...], what: str) -> Any:
    values = v if isinstance(v, list) else [v]
    if not values:
        raise ValueError(f"must name at least one {what}")
    out = []
    for item in values:
        try:
            out.append(check_field(what, item))
        except SpecFieldError:
            hint = did_you_mean(str(item).lower(), allowed)
            raise ValueError(f"must be one of {', '.join(allowed)} (or a list of them), got {item!r}{hint}") from None
    return out if isinstance(v, list) else out[0]


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
    def _pos_int(cls, v: Any, info: Any) -> Any:
        if v is None:
            return v
        if info.field_name == "count":  # the config's own field, not ConvSpec's
            if not _is_int(v) or v < 1:
                raise ValueError(f"must be an int >= 1, got {v!r}")
            return v
        return _spec_field(_SPEC_FIELD_OF.get(info.field_name, info.field_name), v)

    @field_validator("kernel", "stride", "dilation", "padding", mode="before")
    @classmethod
    def _shape(cls, v: Any, info: Any) -> Any:
        return v if v is None else _spec_field(info.field_name, v)

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
                raise ValueError(f"unknown field {key!r} in 'grid'{did_you_mean(key, LAYER_FIELDS)}")
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
    repeat: int = Field(default=TimingSettings.repeat, ge=1, strict=True)

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
    cache: list[Literal["warm", "cold"]] = Field(default_factory=lambda: ["warm"])
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
        return [check_thread_count(t) for t in values]

    @field_validator("cache", mode="before")
    @classmethod
    def _cache(cls, v: Any) -> Any:
        values = v if isinstance(v, list) else [v]
        if not values or any(c not in ("warm", "cold") for c in values):
            raise ValueError(f"must be warm, cold or a list of them, got {v!r}")
        return list(dict.fromkeys(values))

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
