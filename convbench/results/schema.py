"""The results schema: every column, key and status a results folder holds, defined once.

``summary.csv`` has one row per case (:data:`SUMMARY_COLUMNS`, in that
order), ``samples.csv`` one row per timed sample (:data:`SAMPLE_COLUMNS`).
Rows are built with :func:`summary_row` / :func:`sample_row`, which give
every column (``None`` where unknown) and refuse a name the schema lacks,
and the writer refuses a row with a missing or unknown column, so a typo
cannot silently drop a value. :func:`spec_columns` and :func:`spec_of` are
the two directions between a :class:`~convbench.spec.ConvSpec` and its
columns: readers ask the spec (its FLOPs, bytes, ``is_pointwise``) instead
of re-deriving them from columns.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..spec import ConvSpec

#: Version of the results format; bump when a column changes meaning or goes.
#: 2: repetitions (``repetitions.csv``; summary columns on their agreement,
#: per-round speedups, the reference kernel; samples' ``repetition`` and
#: ``ref_time_s``). Folders of version 1 are read with those columns empty.
#: 3: ``implementation`` (what really computed each case). Folders of version 2
#: are read with it empty.
#: 4: ``rss_peak_bytes`` and ``memory_method`` (how the memory columns were
#: measured, or why not); an unknown ``workspace_bytes`` and an unmeasured
#: ``peak_bytes`` are empty, never 0. Folders of version 3 are read with the two
#: columns empty (their memory was tracemalloc's, which a peer's allocator escapes).
#: Also ``cache`` (``warm`` or ``cold``: a sweep dimension and part of every
#: case key; old folders were all ``warm``), the phase columns of the summary
#: and ``phases.csv``.
#: 5: ``retaken``, ``contended``, ``other_load``, ``steal`` and the samples' ``ran``
#: (what other processes did while a case ran); schema-4 folders read with them empty.
#: 6: 8-bit quantized rows (``dtype`` ``u8s8``, :mod:`convbench.quant`): ``max_abs_err_lsb``
#: and ``quant``; schema-5 folders read with them empty (every row was float).
#: 7: ``pool_threads`` (the threads the kernels' pool really ran a step of the case
#: on); schema-6 folders read with it empty (not recorded).
SCHEMA_VERSION = 7

#: Columns ``summary.csv`` must have (the documented contract).
REQUIRED_COLUMNS = [
    "layer", "layer_class", "network", "count", "algorithm", "status", "reason",
    "layout", "dtype", "threads", "batch", "in_channels", "out_channels", "height", "width",
    "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left",
    "pad_right", "dilation_h", "dilation_w", "groups", "output_height", "output_width",
    "flops", "prepare_s", "compile_s", "n_samples", "time_median_s", "time_iqr_s",
    "time_min_s", "time_ci_low_s", "time_ci_high_s", "gflops", "speedup_vs_baseline",
    "workspace_bytes", "peak_bytes", "max_rel_err",
]

#: Every column of ``summary.csv``, in order: the single source of the schema.
#: Beyond the required ones: ``case_index`` (position in the unsharded sweep),
#: ``case_id`` (stable key), ``description`` (ConvSpec.describe()),
#: ``baseline`` (the algorithm speedups refer to), ``error_tolerance``,
#: ``time_mean_s``, ``time_std_s``, ``ci_rel_halfwidth`` (CI half-width / median),
#: ``loops`` (calls per sample), ``prepare_bytes`` (memory the prepared call
#: keeps), ``measured_workspace_bytes`` (prepare_bytes beyond the weights +
#: peak_bytes beyond the output: comparable to ``workspace_bytes``),
#: ``rss_peak_bytes`` (Linux: the resident-set high-water mark during the one
#: untimed call minus the resident set before it, i.e. what the call needed
#: beyond what was resident, whoever allocated it; empty where it cannot be
#: read), ``memory_method`` (what ``prepare_bytes``, ``peak_bytes`` and
#: ``measured_workspace_bytes`` are: ``tracemalloc`` (convbench's own
#: algorithms: numpy and numba allocations), ``rss`` (algorithms whose
#: allocator tracemalloc cannot see, the peers: the resident-set growth), or
#: ``not measured: <why>`` with the three empty; text after ``;`` notes why
#: ``rss_peak_bytes`` is empty), ``workspace_bytes`` (analytic; empty when the
#: algorithm does not know it, as for the peers, never 0),
#: ``numba_allocs`` (NRT allocations in one call), ``implementation`` (what
#: really computed the case: ``Algorithm.implementation``, e.g.
#: ``openblas:SkylakeX``, ``numba:gemm-5x16``, ``torch:Slow2d``), the thread pools as
#: verified during the case (``numba_threads``, ``blas_threads``,
#: ``fft_workers``) and ``seed``.
#:
#: 8-bit quantized rows (schema 6, ``dtype`` ``u8s8``): the answer is checked
#: against the exact integer reference in output units, ``max_abs_err_lsb``
#: (the largest |y - reference| of the uint8 outputs: 0 expected, 1 allowed and
#: ``ok`` with a ``reason`` saying so, since a float32 requantization may land
#: on the other side of a rounding tie; more is ``failed``); their
#: ``max_rel_err`` is empty (NaN): a relative error of uint8 codes against a
#: reference that saturates at 0 and 255 measures nothing, and the LSB count is
#: the exact statement. Float rows leave ``max_abs_err_lsb`` empty. ``quant``
#: records the case's drawn quantization parameters
#: (``QuantizedWeight.describe()``: scales, zero points, bias range; empty for
#: float rows), ``error_tolerance`` is in LSB for u8s8 rows, and ``gflops``
#: counts integer operations (GOP/s) there, the same ``flops`` formula.
#:
#: Repetitions (see :mod:`convbench.sweep.repeats`): the median and its CI
#: pool every repetition (the CI by a bootstrap over repetitions);
#: ``n_repetitions``, ``reps_agree`` (repetitions whose own median is within
#: 10% of the pooled one), ``rep_spread`` (max / min of the repetitions'
#: medians - 1); ``speedup_vs_baseline`` is the median of per-round ratios,
#: ``speedup_ci_low``/``speedup_ci_high`` its CI; ``time_norm_*`` the time in
#: units of the reference kernel timed in the same round, and
#: ``norm_rep_spread`` its spread over repetitions; ``ref_gflops`` that
#: kernel's rate while the case ran, ``ref_drift`` how far it moved within
#: a repetition (worst one), ``unstable`` whether it moved beyond the limit
#: even after ``remeasured`` extra attempts; ``pinned_cpus`` the cores a
#: one-thread case ran on.
#:
#: Cache and phases (schema 4): ``cache`` (``warm`` or ``cold``: a key),
#: ``phase_sum_ratio`` (the phase medians of repetition 0 summed, over the whole
#: call's median of that repetition; ``phases.csv`` has each phase) and
#: ``phases_add_up`` (within 15%). Other processes (schema 5,
#: :mod:`convbench.machine.contention`): ``retaken`` samples that were
#: preempted (their threads ran less than 90% of the wall time) and taken
#: again, over all repetitions; ``contended`` whether a repetition still had
#: more than 20% of its samples retaken, or other processes kept 0.3 cores or
#: more busy, after being measured once more
#: (:func:`convbench.machine.contention.contended`);
#: ``other_load`` the most cores other processes kept busy during a
#: repetition, ``steal`` the hypervisor's steal time (a share of all cores).
#: ``samples.csv``'s ``ran`` is the share of a sample its threads ran.
#: ``pool_threads`` (schema 7): the most threads the kernels' pool
#: (:mod:`convbench.kernels._parallel`) ran one step of the case's timed calls
#: on, the grain's choice included; 0 where no step ran on it (BLAS,
#: scipy.fft or a peer's own pool did the work: ``blas_threads``,
#: ``fft_workers`` and ``numba_threads`` are the limits each pool was given).
REPETITION_SUMMARY_COLUMNS = [
    "n_repetitions", "reps_agree", "rep_spread", "speedup_ci_low", "speedup_ci_high",
    "time_norm_median", "time_norm_ci_low", "time_norm_ci_high", "norm_rep_spread",
    "ref_gflops", "ref_drift", "unstable", "remeasured", "pinned_cpus",
]
SUMMARY_COLUMNS = [
    "case_index", "case_id", *REQUIRED_COLUMNS[:3], "description", *REQUIRED_COLUMNS[3:],
    "baseline", "error_tolerance", "time_mean_s", "time_std_s", "ci_rel_halfwidth", "loops",
    "prepare_bytes", "measured_workspace_bytes", "numba_allocs", "implementation",
    "numba_threads", "blas_threads", "fft_workers", "seed", *REPETITION_SUMMARY_COLUMNS,
    "rss_peak_bytes", "memory_method", "cache", "phase_sum_ratio", "phases_add_up",
    "retaken", "contended", "other_load", "steal", "max_abs_err_lsb", "quant", "pool_threads",
]

#: Columns of ``repetitions.csv``: one row per case and repetition, written as
#: each repetition of a group ends (the summary row comes after the last).
REPETITION_COLUMNS = ["repetition", "pinned_cpu", *SUMMARY_COLUMNS]

#: Merged folders (``convbench merge``, ``run --executor``) add a ``machine``
#: column (:data:`convbench.machine.identity.MACHINE_COLUMN`) to summary.csv and
#: samples.csv: the machine each row was measured on. A single run's folder
#: has none; its machine is its env.json's.

#: Columns of ``samples.csv``: one row per timed sample; ``time_s`` is per
#: call, ``ref_time_s`` the reference kernel's time in the same round.
SAMPLE_COLUMNS = [
    "case_index", "case_id", "layer", "algorithm", "layout", "dtype", "threads",
    "repetition", "round", "sample", "loops", "time_s", "ref_time_s", "cache", "ran",
]

#: Columns of ``phases.csv``: one row per case and phase (see :mod:`convbench.phases`),
#: timed in a pass of their own (repetition 0) beside the whole call: ``time_median_s``
#: and its CI per call, ``share`` of the whole call's median in the same pass,
#: ``n_samples``, ``steps`` (how many steps of the call have this phase).
PHASE_COLUMNS = [
    "case_id", "layer", "algorithm", "layout", "dtype", "threads", "cache", "phase", "steps",
    "time_median_s", "time_ci_low_s", "time_ci_high_s", "share", "n_samples",
]

#: Columns a schema-1 folder lacks; read as empty (repetition 0) so old runs stay readable.
ADDED_IN_2 = {"summary.csv": REPETITION_SUMMARY_COLUMNS, "samples.csv": ["repetition", "ref_time_s"]}
#: Columns a schema-2 folder lacks (read as empty: nothing recorded them then).
ADDED_IN_3 = {"summary.csv": ["implementation"], "samples.csv": []}
#: Columns a schema-3 folder lacks (read as empty: nothing recorded them then).
ADDED_IN_4 = {"summary.csv": ["rss_peak_bytes", "memory_method", "cache", "phase_sum_ratio", "phases_add_up"],
              "samples.csv": ["cache"]}
#: Columns a schema-4 folder lacks: what other processes did (read as empty: nothing recorded it).
ADDED_IN_5 = {"summary.csv": ["retaken", "contended", "other_load", "steal"], "samples.csv": ["ran"]}
#: Columns a schema-5 folder lacks: 8-bit rows did not exist (read as empty, NaN: every row was float).
ADDED_IN_6 = {"summary.csv": ["max_abs_err_lsb", "quant"], "samples.csv": []}
ADDED_IN_7 = {"summary.csv": ["pool_threads"], "samples.csv": []}
#: What a column missing from an older folder reads as, where empty would be wrong
#: (every case before schema 4 ran warm, and ``cache`` is part of the case keys).
COLUMN_DEFAULTS = {"cache": "warm", "repetition": 0}
#: Each schema's additions, by the version that added them.
_ADDED = {2: ADDED_IN_2, 3: ADDED_IN_3, 4: ADDED_IN_4, 5: ADDED_IN_5, 6: ADDED_IN_6, 7: ADDED_IN_7}


def added_since(name: str, version: int) -> list[str]:
    """The columns of ``name`` (``summary.csv``, ``samples.csv``) a folder of schema
    ``version`` may lack: everything added by a later schema."""
    return [col for v, added in sorted(_ADDED.items()) if version < v for col in added[name]]

#: ``ok``: measured and right (a ``reason`` on an ok row is a note: a u8s8 answer 1 LSB
#: from the exact reference); ``skipped``: not run (unsupported, the memory
#: guard, too many threads), ``failed``: a wrong answer; ``error``: raised;
#: ``crashed``: killed the worker process (the reason names the signal);
#: ``timeout``: no progress within the case timeout; ``missing``: the task of a
#: distributed run (``run --executor``) that was to measure it failed or was
#: lost (the reason says how); ``run --resume`` measures it.
STATUSES = ("ok", "skipped", "failed", "error", "crashed", "timeout", "missing")

#: What identifies a case across runs (compare matches runs on it) ...
CASE_KEYS = ["layer", "algorithm", "layout", "dtype", "threads", "cache"]
#: ... and a layer variant, whose algorithms are set against each other.
VARIANT_KEYS = ["layer", "layout", "dtype", "threads", "cache"]

#: The cache states a case can be timed in (see :mod:`convbench.machine.cache`).
CACHE_STATES = ("warm", "cold")

FILES = ("summary.csv", "samples.csv", "env.json", "config.yaml")

#: The writer's lock file in a results folder (runtime state, not results: see :mod:`.lock`).
LOCK_FILE = ".convbench.lock"

#: The columns that hold a ConvSpec (see :func:`spec_columns`).
SPEC_COLUMNS = [
    "layout", "dtype", "batch", "in_channels", "out_channels", "height", "width", "kernel_h", "kernel_w",
    "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left", "pad_right", "dilation_h", "dilation_w",
    "groups", "output_height", "output_width", "flops",
]


class SchemaError(ValueError):
    """A row does not fit the schema (a missing or unknown column): a bug, never dropped silently."""


def with_defaults(df: Any) -> Any:
    """``df`` (a summary or samples DataFrame) with the :data:`COLUMN_DEFAULTS` columns it
    lacks added, and their empty cells filled: frames built by hand or by older code
    group and match on the case keys like a folder read from disk."""
    missing = {k: v for k, v in COLUMN_DEFAULTS.items() if k == "cache" and (k not in df.columns or df[k].isna().any())}
    if not missing:
        return df
    df = df.copy()
    for k, v in missing.items():
        df[k] = df[k].fillna(v) if k in df.columns else v
    return df


def flag(df: Any, column: str) -> Any:
    """Whether each row's ``column`` (``unstable``, ``contended``, ...) is set, as a boolean
    array: a CSV gives the flag back as a bool, a string or NaN; absent or empty is False."""
    import numpy as np

    if column not in df:
        return np.zeros(len(df), bool)
    return df[column].map(lambda v: v is True or str(v) in ("True", "1.0")).to_numpy(bool)


def case_id(layer: str, layout: str, dtype: str, threads: int, algorithm: str, cache: str = "warm") -> str:
    """The stable key of a case, e.g. ``conv1|nhwc|float32|t1|im2col``; a cold case
    says so (``conv1|nhwc|float32|t1|cold|im2col``), a warm one keeps the key it
    had before the cache dimension existed."""
    if cache == "warm":
        return f"{layer}|{layout}|{dtype}|t{threads}|{algorithm}"
    return f"{layer}|{layout}|{dtype}|t{threads}|{cache}|{algorithm}"


def spec_columns(spec: ConvSpec) -> dict[str, Any]:
    """The columns of a row that describe ``spec`` (:data:`SPEC_COLUMNS`)."""
    s = spec
    return {
        "layout": s.layout, "dtype": s.dtype, "batch": s.batch, "in_channels": s.in_channels,
        "out_channels": s.out_channels, "height": s.height, "width": s.width, "kernel_h": s.kernel_h,
        "kernel_w": s.kernel_w, "stride_h": s.stride_h, "stride_w": s.stride_w, "pad_top": s.pad_top,
        "pad_bottom": s.pad_bottom, "pad_left": s.pad_left, "pad_right": s.pad_right,
        "dilation_h": s.dilation_h, "dilation_w": s.dilation_w, "groups": s.groups,
        "output_height": s.output_height, "output_width": s.output_width, "flops": s.flops,
    }


def spec_of(row: Mapping[str, Any]) -> ConvSpec:
    """The ConvSpec a summary row describes (the inverse of :func:`spec_columns`)."""
    def n(key: str) -> int:
        return int(row[key])

    return ConvSpec(
        batch=n("batch"), in_channels=n("in_channels"), out_channels=n("out_channels"),
        height=n("height"), width=n("width"), kernel=(n("kernel_h"), n("kernel_w")),
        stride=(n("stride_h"), n("stride_w")),
        padding=(n("pad_top"), n("pad_bottom"), n("pad_left"), n("pad_right")),
        dilation=(n("dilation_h"), n("dilation_w")), groups=n("groups"),
        layout=str(row["layout"]), dtype=str(row["dtype"]),
    )


def specs_of(summary: Any) -> list[ConvSpec]:
    """:func:`spec_of` for every row of a summary DataFrame, in order (one spec per distinct
    shape: a big run repeats a few hundred shapes over thousands of rows)."""
    made: dict[tuple[Any, ...], ConvSpec] = {}
    out = []
    for values in summary[SPEC_COLUMNS].itertuples(index=False, name=None):
        spec = made.get(values)
        if spec is None:
            spec = made[values] = spec_of(dict(zip(SPEC_COLUMNS, values)))
        out.append(spec)
    return out


def _row(columns: list[str], values: Mapping[str, Any], what: str) -> dict[str, Any]:
    unknown = [k for k in values if k not in columns]
    if unknown:
        raise SchemaError(f"{what} has no column(s) {', '.join(map(repr, unknown))}; the columns are {', '.join(columns)}")
    row = dict.fromkeys(columns)
    row.update({k: v for k, v in COLUMN_DEFAULTS.items() if k in row and k != "repetition"})
    row.update(values)
    return row


def summary_row(**values: Any) -> dict[str, Any]:
    """A ``summary.csv`` row: every column, ``None`` where not given (``cache``: ``warm``);
    an unknown name is a :class:`SchemaError`."""
    return _row(SUMMARY_COLUMNS, values, "summary.csv")


def repetition_row(repetition: int, pinned_cpu: int | None, row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``repetitions.csv`` row: a case's summary row as measured in one repetition."""
    return _row(REPETITION_COLUMNS, {"repetition": repetition, "pinned_cpu": pinned_cpu, **row}, "repetitions.csv")


def sample_row(**values: Any) -> dict[str, Any]:
    """A ``samples.csv`` row, as :func:`summary_row`."""
    return _row(SAMPLE_COLUMNS, values, "samples.csv")


def phase_row(**values: Any) -> dict[str, Any]:
    """A ``phases.csv`` row, as :func:`summary_row`."""
    return _row(PHASE_COLUMNS, values, "phases.csv")


def check_rows(rows: Iterable[Mapping[str, Any]], columns: list[str], what: str) -> None:
    """Raise :class:`SchemaError` unless every row has exactly ``columns``."""
    expected = set(columns)
    for row in rows:
        keys = set(row)
        if keys != expected:
            missing = [c for c in columns if c not in keys]
            unknown = sorted(keys - expected)
            parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
                [f"has unknown {', '.join(unknown)}"] if unknown else [])
            raise SchemaError(f"a {what} row {' and '.join(parts)}; build rows with summary_row()/sample_row()")
