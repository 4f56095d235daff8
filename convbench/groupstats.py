"""Statistics of many groups of samples at once: bootstrap CIs of medians, ratios, geometric means.

Pure functions of arrays, so they can be tested on synthetic samples (as
:mod:`convbench.timing` is). A *group* is whatever one statistic is computed
over: today the per-call samples of one case (``case_id``); the same functions
take any key array, so per-repetition medians keyed by case, or speedups keyed
by layer class, go through the same door.

Why not one bootstrap per case in a Python loop: at 2000 resamples of ~300
samples that is ~0.04 s a case, 20 s for the 512 cases of the paper run and
~17 min for 25,600. Here every group is done in a few array operations:

- The bootstrap distribution of a median is drawn *exactly* without building
  the resamples. Drawing ``n`` indices uniformly from ``0..n-1`` is
  ``floor(n * U_i)`` for ``n`` uniforms ``U_i``; the ``j``-th smallest index is
  ``floor(n * U_(j))`` and ``U_(j) ~ Beta(j, n + 1 - j)``. For an odd ``n``
  the resample's median is the sorted sample at that index (``j = (n+1)/2``).
  For an even ``n`` it is the mean of ranks ``j = n/2`` and ``j + 1``; given
  ``U_(j) = u`` the other ``n - j`` uniforms above it are uniform on
  ``(u, 1)``, so ``U_(j+1) = u + (1 - u)(1 - V^(1/(n-j)))``. Cost: two or
  three random numbers per resample instead of ``n`` draws and a partition;
  the distribution is the same as resampling (tested against it).
- Ratio CIs take ``median(num*) / median(den*)`` over independent resamples
  of each side, percentiles as :func:`numpy.quantile` (linear), in chunks of
  rows so memory stays bounded whatever the number of cases.
- Geometric means of groups (e.g. per layer class) resample the values
  within each group, all groups in one array per batch of resamples.

Seeding: one :class:`numpy.random.Generator` per call, from ``seed``; the same
inputs in the same order give the same intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: Bootstrap resamples per interval (as the per-case code always used).
N_BOOT = 2000
#: Rows of resamples held at once: CHUNK x N_BOOT floats (~32 MiB at 2000).
CHUNK = 2048


@dataclass(frozen=True)
class Groups:
    """Samples of many groups, each group's finite values sorted, in one flat array.

    ``keys[g]`` names group ``g``; its values are
    ``values[offsets[g] : offsets[g] + sizes[g]]`` in ascending order.
    Non-finite values are dropped (as the per-case statistics always did).
    """

    keys: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray
    values: np.ndarray

    @classmethod
    def from_arrays(cls, values: Any, keys: Any) -> "Groups":
        """Group ``values`` by ``keys`` (any array of hashables; order of first appearance)."""
        import pandas as pd

        v = np.asarray(values, dtype=float)
        # a pandas Series (e.g. a categorical case_id) factorises without becoming strings
        codes, uniques = pd.factorize(keys if isinstance(keys, pd.Series) else np.asarray(keys), sort=False)
        keep = np.isfinite(v) & (codes >= 0)
        v, codes = v[keep], codes[keep]
        order = np.lexsort((v, codes))  # by group, then by value
        sizes = np.bincount(codes, minlength=len(uniques))
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return cls(np.asarray(uniques, dtype=object), offsets, sizes.astype(np.int64), v[order])

    @classmethod
    def empty(cls) -> "Groups":
        z = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, dtype=object), z, z, np.zeros(0))

    def rows(self, keys: Any) -> np.ndarray:
        """Position of each of ``keys`` among the groups (-1 where there is none)."""
        import pandas as pd

        index = pd.Index(self.keys)
        return np.asarray(index.get_indexer(np.asarray(keys, dtype=object)), dtype=np.int64)

    def size_of(self, rows: np.ndarray) -> np.ndarray:
        """Number of values of each row (0 for -1)."""
        rows = np.asarray(rows, dtype=np.int64)
        return np.where(rows >= 0, self.sizes[np.maximum(rows, 0)] if len(self.sizes) else 0, 0)


def median_replicates(groups: Groups, rows: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap medians, shape ``(len(rows), n_boot)``: row ``i`` resamples group ``rows[i]``.

    Every row must name a group with at least one value. Exact in
    distribution (see the module docstring), not an approximation.
    """
    rows = np.asarray(rows, dtype=np.int64)
    n = groups.sizes[rows]
    if (n < 1).any():
        raise ValueError("median_replicates: every row needs at least one value")
    off = groups.offsets[rows][:, None]
    odd = (n % 2 == 1)[:, None]
    j = np.where(odd[:, 0], (n + 1) // 2, n // 2)  # 1-based rank of the (lower) middle
    nn = n[:, None].astype(float)
    u1 = rng.beta(j[:, None].astype(float), (n + 1 - j)[:, None].astype(float), size=(len(rows), n_boot))
    k1 = np.minimum((nn * u1).astype(np.int64), n[:, None] - 1)
    lower = groups.values[off + k1]
    if odd.all():
        return lower
    # even n: the next order statistic, the least of the n - j uniforms above u1
    above = np.maximum(n - j, 1)[:, None].astype(float)
    v = rng.random(size=(len(rows), n_boot))
    u2 = u1 + (1.0 - u1) * -np.expm1(np.log(v) / above)
    k2 = np.minimum((nn * u2).astype(np.int64), n[:, None] - 1)
    upper = groups.values[off + k2]
    return np.where(odd, lower, (lower + upper) / 2.0)


def _chunks(n: int, size: int = CHUNK) -> Sequence[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def ratio_cis(
    num: Groups, num_rows: Any, den: Groups, den_rows: Any, *, confidence: float = 0.95,
    n_boot: int = N_BOOT, seed: int = 0, min_samples: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap CIs of ``median(num group) / median(den group)``, one per pair.

    Pair ``i`` is ``num_rows[i]`` of ``num`` over ``den_rows[i]`` of ``den``
    (positions from :meth:`Groups.rows`); the two sides are resampled
    independently. NaN where a side has fewer than ``min_samples`` values or
    its row is -1.
    """
    num_rows = np.asarray(num_rows, dtype=np.int64)
    den_rows = np.asarray(den_rows, dtype=np.int64)
    lo = np.full(len(num_rows), math.nan)
    hi = np.full(len(num_rows), math.nan)
    ok = (num.size_of(num_rows) >= min_samples) & (den.size_of(den_rows) >= min_samples)
    idx = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    for part in _chunks(len(idx)):
        sel = idx[part]
        ratios = median_replicates(num, num_rows[sel], n_boot, rng) / median_replicates(den, den_rows[sel], n_boot, rng)
        q = np.quantile(ratios, [alpha, 1.0 - alpha], axis=1)
        lo[sel], hi[sel] = q[0], q[1]
    return lo, hi


def median_cis(
    groups: Groups, rows: Any = None, *, confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0,
    min_samples: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap CIs of each group's median (all groups when ``rows`` is None)."""
    rows = np.arange(len(groups.keys)) if rows is None else np.asarray(rows, dtype=np.int64)
    lo = np.full(len(rows), math.nan)
    hi = np.full(len(rows), math.nan)
    idx = np.flatnonzero(groups.size_of(rows) >= min_samples)
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    for part in _chunks(len(idx)):
        sel = idx[part]
        q = np.quantile(median_replicates(groups, rows[sel], n_boot, rng), [alpha, 1.0 - alpha], axis=1)
        lo[sel], hi[sel] = q[0], q[1]
    return lo, hi


def geomean_cis(
    values: Any, keys: Any, *, confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Geometric mean of each group's positive finite values, with a percentile-bootstrap CI.

    Resamples the values within each group (e.g. the speedups of the layers
    of one layer class). Returns ``(keys, geomean, ci_low, ci_high)`` with
    groups in order of first appearance; the CI is NaN for a group of fewer
    than 2 values, everything NaN for a group with none.
    """
    import pandas as pd

    v = np.asarray(values, dtype=float)
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object), sort=False)
    keep = np.isfinite(v) & (v > 0) & (codes >= 0)
    logs, codes = np.log(v[keep]), codes[keep]
    n_groups = len(uniques)
    sizes = np.bincount(codes, minlength=n_groups)
    sums = np.bincount(codes, weights=logs, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        gm = np.exp(sums / sizes)
    lo = np.full(n_groups, math.nan)
    hi = np.full(n_groups, math.nan)
    order = np.argsort(codes, kind="stable")
    logs, codes = logs[order], codes[order]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    resampled = sizes[codes] >= 2  # elements of groups that get an interval
    el_off, el_n, el_code = offsets[codes][resampled], sizes[codes][resampled], codes[resampled]
    if el_n.size:
        rng = np.random.default_rng(seed)
        has = sizes >= 2
        firsts = np.flatnonzero(np.r_[True, el_code[1:] != el_code[:-1]])  # elements are sorted by group
        # one row = one resample of every group: each element is one draw from its own group
        step = max(1, int(4_000_000 // el_n.size))
        totals = np.empty((n_boot, int(has.sum())))
        for b0 in range(0, n_boot, step):
            nb = min(step, n_boot - b0)
            draw = el_off + (rng.random((nb, el_n.size)) * el_n).astype(np.int64)
            totals[b0:b0 + nb] = np.add.reduceat(logs[draw], firsts, axis=1)
        alpha = (1.0 - confidence) / 2.0
        q = np.quantile(np.exp(totals / sizes[has]), [alpha, 1.0 - alpha], axis=0)
        lo[has], hi[has] = q[0], q[1]
    return np.asarray(uniques, dtype=object), gm, lo, hi
