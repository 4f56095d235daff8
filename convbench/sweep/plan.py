"""A plan: everything a run will measure, decided before anything is measured.

:func:`plan` expands a :class:`~convbench.config.Config` (with typed
overrides: algorithm names, thread counts, layer globs, a shard) into
:class:`Group` s of :class:`Case` s. The unit of measurement is a group: one
layer in one layout and dtype at one thread count, with every algorithm to
compare on it, measured interleaved (:mod:`.measure`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..algorithm import unsupported_reason
from ..config.expand import Config, ConfigError, Layer, resolve_algorithms
from ..machine.threads import check_thread_count
from ..registry import get_algorithm
from ..results import schema
from ..spec import ConvSpec
from ..timing import TimingSettings, quick as quick_settings


@dataclass(frozen=True)
class Case:
    """One measurement: a layer variant, an algorithm, a thread count."""

    index: int  # position in the whole (unsharded) sweep
    layer: Layer
    spec: ConvSpec
    algorithm: str
    threads: int
    cache: str = "warm"  # "warm" or "cold": see convbench.machine.cache

    @property
    def case_id(self) -> str:
        return schema.case_id(self.layer.name, self.spec.layout, self.spec.dtype, self.threads, self.algorithm,
                              self.cache)


@dataclass(frozen=True)
class Group:
    """The cases measured together, interleaved: same spec, same threads, same cache state."""

    index: int
    layer: Layer
    spec: ConvSpec
    threads: int
    cases: tuple[Case, ...]
    cache: str = "warm"


@dataclass
class Plan:
    """Everything a run will do, decided before anything is measured."""

    config: Config
    algorithms: list[str]
    threads: list[int]
    timing: TimingSettings
    groups: list[Group]
    quick: bool = False
    shard: tuple[int, int] | None = None
    plugins: list[str] = field(default_factory=list)  # plugins named beside the config, recorded in config.yaml
    cache: list[str] = field(default_factory=lambda: ["warm"])  # the cache states swept
    phases: bool = True  # time the steps of each call (phases.csv); --no-phases turns it off
    wait_quiet_s: float = 0.0  # before each repetition of a group, wait up to this long for idle cores

    @property
    def cases(self) -> list[Case]:
        return [c for g in self.groups for c in g.cases]

    @property
    def n_cases(self) -> int:
        return sum(len(g.cases) for g in self.groups)

    def config_as_run(self) -> dict[str, Any]:
        data = self.config.as_run(self.algorithms, self.threads, self.timing, self.cache)
        data["plugins"] = list(dict.fromkeys([*data["plugins"], *self.plugins]))
        return data


def check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    """``(I, N)``, shard I of N numbered 1..N; ``ValueError`` names the problem."""
    ints = isinstance(shard, tuple) and len(shard) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in shard)
    if not ints:
        raise ValueError(f"must be a pair (I, N) of ints, got {shard!r}")
    i, n = shard
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f"must be I/N with 1 <= I <= N (shards are numbered 1..N), got {i}/{n}")
    return i, n


def plan(
    config: Config,
    *,
    algorithms: list[str] | None = None,
    threads: list[int] | None = None,
    layers: list[str] | None = None,
    quick: bool = False,
    shard: tuple[int, int] | None = None,
    plugins: list[str] | None = None,
    repeat: int | None = None,
    cache: list[str] | None = None,
    phases: bool = True,
    dtypes: list[str] | None = None,
) -> Plan:
    """Expand a config (with overrides) into groups of cases.

    ``algorithms`` replaces the config's (the baseline is always added),
    ``threads`` its thread counts, ``layers`` keeps the layers matching any
    of these globs. Cases are numbered in sweep order (layer, layout, dtype,
    threads, algorithm). ``shard=(I, N)`` keeps every N-th group starting at
    I-1, so the N shards partition the sweep and each keeps whole groups
    (speedups need the baseline measured beside the others). ``repeat``
    replaces the config's number of repetitions (``quick`` implies 1 unless given);
    ``cache`` the config's cache states (``warm``, ``cold``); ``phases=False``
    skips the phase pass (``--no-phases``); ``dtypes`` replaces every layer's
    dtypes (``--dtype``, e.g. ``["float32", "u8s8"]``).
    """
    config = config.select_layers(layers).with_dtypes(dtypes)
    names = (
        resolve_algorithms(algorithms, config.baseline, "algorithms")
        if algorithms is not None
        else config.algorithm_names()
    )
    if threads is not None and not threads:
        raise ValueError("thread counts: give at least one")
    counts = [check_thread_count(t) for t in threads] if threads is not None else config.threads
    timing = quick_settings(config.timing) if quick else config.timing
    if repeat is not None:
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat must be an int >= 1, got {repeat!r}")
        timing = replace(timing, repeat=repeat)
    shard = check_shard(shard) if shard is not None else None
    caches = [check_cache_state(c) for c in cache] if cache is not None else config.cache
    if not caches:
        raise ValueError("cache states: give at least one (warm, cold)")
    groups: list[Group] = []
    index = 0
    gi = 0
    for layer in config.layers:
        for spec in layer.variants():
            for t in counts:
                for state in caches:
                    cases = []
                    for name in names:
                        cases.append(Case(index, layer, spec, name, t, state))
                        index += 1
                    if shard is None or gi % shard[1] == shard[0] - 1:
                        groups.append(Group(gi, layer, spec, t, tuple(cases), state))
                    gi += 1
    if not groups:
        raise ConfigError(
            f"{config.path}: shard {shard[0]}/{shard[1]} is empty: the sweep has only {gi} group(s) "
            "(layer variants x thread counts); use at most that many shards"
            if shard else f"{config.path}: the sweep is empty: no layer to measure"
        )
    return Plan(config, names, counts, timing, groups, quick, shard, list(plugins or []), list(caches), phases)


def check_cache_state(value: object) -> str:
    """``warm`` or ``cold``; ``ValueError`` names the value otherwise."""
    if value not in schema.CACHE_STATES:
        raise ValueError(f"a cache state must be one of {', '.join(schema.CACHE_STATES)}, got {value!r}")
    return str(value)


def describe_layers(plan: Plan) -> list[dict[str, Any]]:
    """The expanded layer table: one row per layer variant, FLOPs and each
    algorithm's analytic workspace (``None`` where it does not support it,
    ``"unknown"`` where the algorithm does not know it: a peer's library)."""
    rows = []
    for layer in plan.config.layers:
        for spec in layer.variants():
            row: dict[str, Any] = {
                "layer": layer.name, "layer_class": layer.layer_class, "count": layer.count,
                "description": spec.describe(), "layout": spec.layout, "dtype": spec.dtype,
                "flops": spec.flops, "workspace_bytes": {},
            }
            for name in plan.algorithms:
                algo = get_algorithm(name)
                try:
                    why = unsupported_reason(algo, spec)
                    ws = None if why else algo.workspace_bytes(spec)
                    row["workspace_bytes"][name] = None if why else "unknown" if ws is None else int(ws)
                except Exception:
                    row["workspace_bytes"][name] = None
            rows.append(row)
    return rows


# -- resuming: what of a plan is still to measure -----------------------------------


def without_cases(plan: Plan, done: set[str]) -> Plan:
    """``plan`` without the groups whose every case is in ``done`` (case ids)."""
    groups = [g for g in plan.groups if not all(c.case_id in done for c in g.cases)]
    return replace(plan, groups=groups)


def whole_repetitions(plan: Plan) -> Callable[[set[tuple[str, int]]], set[tuple[str, int]]]:
    """For resuming: keep a repetition of a group only if every case of it is on disk."""
    def keep(done: set[tuple[str, int]]) -> set[tuple[str, int]]:
        kept = set(done)
        reps = {r for _, r in done}
        for g in plan.groups:
            for r in reps:
                keys = {(c.case_id, r) for c in g.cases}
                if keys & done and not keys <= done:
                    kept -= keys
        return kept
    return keep


def whole_groups(plan: Plan) -> Callable[[set[str]], set[str]]:
    """For resuming: keep only the cases of groups that are entirely present
    (a group is written at once; a torn write leaves part of one)."""
    def keep(done: set[str]) -> set[str]:
        kept = set(done)
        for g in plan.groups:
            ids = {c.case_id for c in g.cases}
            if ids & done and not ids <= done:
                kept -= ids
        return kept
    return keep
