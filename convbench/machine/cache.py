"""Cold caches: the machine's cache levels, and the eviction that makes a timed call cold.

The sweep's ``cache`` dimension (``warm`` | ``cold``): in a cold case nothing
the call touches (input, the prepared state with its packed weights and
buffers, the output) is in any cache level when the clock starts, as with
oneDNN benchdnn's ``--cold-cache``, XNNPACK's benchmarks and NNPACK's bench.
:func:`cache_sizes` reads the levels from the OS (never a constant);
:class:`ColdCache` evicts them between calls, untimed; :func:`probe` checks
on the machine at hand that an eviction really makes a pass over a working
set slower (and that without one it would not be).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .memory import available, format_size
from .threads import pinned

SYSFS_CPU = Path("/sys/devices/system/cpu")
UNKNOWN = "unknown"
#: Eviction buffer = FACTOR x the last-level cache (see ColdCache).
FACTOR = 3
_FALLBACK_LINE = 64  # a stride no larger than any current x86/Arm line touches every line


def _parse_bytes(text: str) -> int | None:
    """A sysfs cache size (``32K``, ``1024K``, ``8M``, ``512``) as bytes, or None."""
    m = re.fullmatch(r"(\d+)\s*([KMG]?)(I?B)?", text.strip().upper())
    if not m:
        return None
    value = int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]
    return value if value > 0 else None


def parse_cpu_list(text: str) -> list[int]:
    """A kernel CPU list (``0-3,8,10-11``) as sorted core numbers; ``[]`` if it does not parse."""
    cores: set[int] = set()
    try:
        for part in text.strip().split(","):
            if not part:
                continue
            lo, _, hi = part.partition("-")
            cores.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        return []
    return sorted(cores)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _sysfs_levels(root: Path) -> list[dict[str, Any]]:
    levels = []
    for index in sorted(root.glob("index*")):
        level, size = _read(index / "level"), _read(index / "size")
        if level is None or size is None or not level.isdigit() or _parse_bytes(size) is None:
            continue
        line = _read(index / "coherency_line_size")
        levels.append({
            "level": int(level),
            "type": _read(index / "type") or UNKNOWN,
            "bytes": _parse_bytes(size),
            "shared_cpu_list": _read(index / "shared_cpu_list") or UNKNOWN,
            "line_bytes": int(line) if line and line.isdigit() and int(line) > 0 else UNKNOWN,
        })
    return levels


def _sysconf_levels() -> list[dict[str, Any]]:
    names = [(1, "Data", "SC_LEVEL1_DCACHE"), (1, "Instruction", "SC_LEVEL1_ICACHE"),
             (2, "Unified", "SC_LEVEL2_CACHE"), (3, "Unified", "SC_LEVEL3_CACHE"), (4, "Unified", "SC_LEVEL4_CACHE")]
    levels = []
    for level, kind, name in names:
        try:
            size, line = os.sysconf(name + "_SIZE"), os.sysconf(name + "_LINESIZE")
        except (ValueError, OSError, AttributeError):
            continue
        if size and size > 0:
            levels.append({"level": level, "type": kind, "bytes": int(size), "shared_cpu_list": UNKNOWN,
                           "line_bytes": int(line) if line and line > 0 else UNKNOWN})
    return levels


def _cpuinfo_levels() -> list[dict[str, Any]]:
    try:
        import cpuinfo

        info = cpuinfo.get_cpu_info()
    except Exception:
        return []
    keys = [(1, "Data", "l1_data_cache_size"), (1, "Instruction", "l1_instruction_cache_size"),
            (2, "Unified", "l2_cache_size"), (3, "Unified", "l3_cache_size")]
    return [{"level": level, "type": kind, "bytes": int(info[key]), "shared_cpu_list": UNKNOWN, "line_bytes": UNKNOWN}
            for level, kind, key in keys if isinstance(info.get(key), int) and info[key] > 0]


def cache_sizes(root: str | Path | None = None) -> dict[str, Any]:
    """The cache levels of this machine, as the OS shows them (cpu0's view).

    Read from ``/sys/devices/system/cpu/cpu0/cache/index*`` (``root`` points
    elsewhere, for tests, and then nothing else is tried); where there is no sysfs, from ``os.sysconf``'s
    ``SC_LEVEL*`` names, then py-cpuinfo (cpuid: it may give totals over
    cores, and on the Zen 4 VMs it says L3 = 1 MiB where sysfs says 32 MiB,
    so it is the last resort and ``source`` says when it was used). Sizes are
    per instance, as shown: in a VM the L3 may be the host's whole CCD or
    socket, shared with other guests. Anything not found is ``"unknown"``.
    """
    levels = _sysfs_levels(Path(root) if root is not None else SYSFS_CPU / "cpu0" / "cache")
    source = "sysfs"
    if not levels and root is None:
        levels, source = _sysconf_levels(), "sysconf"
        if not levels:
            levels, source = _cpuinfo_levels(), "py-cpuinfo"
    if not levels:
        source = UNKNOWN

    def size(level: int, types: tuple[str, ...]) -> int | str:
        found = [c["bytes"] for c in levels if c["level"] == level and c["type"] in types]
        return max(found) if found else UNKNOWN

    data = [c for c in levels if c["type"] in ("Data", "Unified")]
    llc = max(data, key=lambda c: (c["level"], c["bytes"])) if data else None
    lines = [c["line_bytes"] for c in data if isinstance(c["line_bytes"], int)]
    return {
        "source": source,
        "levels": levels,
        "l1d_bytes": size(1, ("Data", "Unified")),
        "l1i_bytes": size(1, ("Instruction",)),
        "l2_bytes": size(2, ("Data", "Unified")),
        "l3_bytes": size(3, ("Data", "Unified")),
        "llc_level": llc["level"] if llc else UNKNOWN,
        "llc_bytes": llc["bytes"] if llc else UNKNOWN,
        "llc_shared_cpu_list": llc["shared_cpu_list"] if llc else UNKNOWN,
        "line_bytes": min(lines) if lines else UNKNOWN,
    }


def private_bytes(sizes: dict[str, Any]) -> int | None:
    """The largest data cache below the last level (per core: L2 on most CPUs), or None."""
    llc = sizes.get("llc_level")
    below = [c["bytes"] for c in sizes.get("levels", [])
             if c["type"] in ("Data", "Unified") and isinstance(llc, int) and c["level"] < llc]
    return max(below) if below else None


def llc_domains(cores: list[int], root: Path = SYSFS_CPU) -> list[list[int]]:
    """``cores`` grouped by the last-level cache they share (one group where sysfs does not say)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for core in cores:
        sizes = cache_sizes(root / f"cpu{core}" / "cache")
        shared = parse_cpu_list(str(sizes["llc_shared_cpu_list"])) if sizes["source"] == "sysfs" else []
        groups.setdefault(tuple(shared) or tuple(cores), []).append(core)
    return list(groups.values())


def _stream(words: np.ndarray, step: int) -> None:
    """Read and write one 8-byte word in every ``step`` words: every cache line, left dirty."""
    view = words[::step]
    np.add(view, 1, out=view)


class ColdCache:
    """Evicts every cache level between timed calls: ``flush()`` before each call, untimed.

    Method: stream a buffer of ``FACTOR`` (3) x the last-level cache,
    reading and writing one word of every cache line (a read-modify-write,
    so the lines it leaves are dirty and the operands' own dirty lines are
    written back and gone), rather than rotating copies of the operands.
    Why this one:

    - it works for every algorithm alike, including production peers whose
      prepared state (oneDNN primitives, ONNX Runtime sessions) cannot be
      copied, and costs the same memory whatever the layer;
    - the size: replacement in a last-level cache is not LRU (Zen's L3 is
      a victim cache of the L2s), so one LLC's worth does not evict all of
      it. Measured on the Zen 4 VM (32 MiB L3 shown), the time to read a
      4 or 8 MiB working set after a flush, as a fraction of its time after a
      flush of 8x the LLC: 1x 0.89-0.91, 2x 0.96, 3x 0.97-1.00, 4x
      0.98-0.99 (median of 100-150 interleaved samples). 3x is where it
      stops changing; more only costs time;
    - one word per line (a stride of the line size) moves exactly the same
      lines as touching every byte and is ~25% cheaper; the buffer is
      filled with distinct data up front, so its pages are real, distinct
      and faulted in before the first flush (an untouched or constant buffer
      can be the zero page or merged pages, which evict nothing);
    - private levels: where the calling thread may run on several cores (a
      case with threads > 1), the L2 of every one of them may hold
      operands, and a pass on one core does not touch another's L2 on bare
      metal (on the VM it did, measured: vCPUs are not fixed cores; the
      extra pass is for real machines). So each of those cores but one
      streams a small buffer (``FACTOR`` x its L2) on itself first, and the
      big pass runs last, on one core of each last-level domain, evicting
      what those passes pushed into the shared level. A one-thread case pinned to a core (the usual
      one) pays no migration at all.

    Cost on the Zen 4 VM: 3.2-4.4 ms per flush, median 3.6 (96 MiB, ~55
    GB/s of reads and writes; pinned or over both cores alike; 2x would save
    ~1.2 ms), kept in ``flush_s`` of :meth:`describe`. A cold sample pays it
    once per call; the constructor pays the allocation and page faults
    (~40 ms) so the first flush is like the rest. ``memory_limit`` (bytes) and MemAvailable bound the buffer: a
    machine that cannot hold it raises ``ValueError`` with both numbers,
    which the sweep turns into a skipped row. The sweep should also count
    :attr:`nbytes` in a cold case's memory.
    """

    def __init__(self, memory_limit: int | None = None, *, sizes: dict[str, Any] | None = None,
                 factor: int = FACTOR) -> None:
        self.sizes = sizes if sizes is not None else cache_sizes()
        llc = self.sizes.get("llc_bytes")
        if not isinstance(llc, int):
            raise ValueError("cold cache: the size of this machine's last-level cache is unknown "
                             f"(source: {self.sizes.get('source')}), so no eviction buffer can be sized")
        if factor < 1:
            raise ValueError(f"cold cache: the buffer factor must be at least 1, got {factor}")
        line = self.sizes.get("line_bytes")
        self.line_bytes = line if isinstance(line, int) and line <= 4096 else _FALLBACK_LINE
        self.factor = factor
        private = private_bytes(self.sizes)
        self.private_buffer_bytes = self._round(factor * private) if private else 0
        self.buffer_bytes = self._round(factor * llc)
        self.nbytes = self.buffer_bytes + self.private_buffer_bytes
        have, source = available(memory_limit)
        if have is not None and self.nbytes > have:
            raise ValueError(
                f"cold cache: the eviction buffer needs {format_size(self.nbytes)} ({self.nbytes} bytes, "
                f"{factor}x the {format_size(llc)} last-level cache) but only {format_size(have)} "
                f"({have} bytes) is available ({source})"
            )
        words = np.arange(self.nbytes // 8, dtype=np.int64)  # distinct data, every page faulted in
        self._big = words[: self.buffer_bytes // 8]
        self._small = words[self.buffer_bytes // 8:]
        self._step = max(1, self.line_bytes // 8)
        self._domains: dict[frozenset[int], list[list[int]]] = {}
        self.flushes = 0
        self.flush_seconds = 0.0

    def _round(self, n: int) -> int:
        return -(-int(n) // self.line_bytes) * self.line_bytes

    def _cores(self) -> list[int]:
        try:
            return sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            return []

    def flush(self) -> None:
        """Evict the caches of every core the calling thread may run on. Not to be timed."""
        start = time.perf_counter()
        cores = self._cores()
        if len(cores) <= 1:
            _stream(self._big, self._step)
        else:
            key = frozenset(cores)
            if key not in self._domains:
                self._domains[key] = llc_domains(cores)
            try:
                for domain in self._domains[key]:
                    for core in domain[:-1]:
                        with pinned(core):
                            _stream(self._small, self._step)
                    with pinned(domain[-1]):
                        _stream(self._big, self._step)
            except OSError:  # affinity refused (a container): one pass where we are
                _stream(self._big, self._step)
        self.flush_seconds += time.perf_counter() - start
        self.flushes += 1

    def describe(self) -> dict[str, Any]:
        """What env.json records: the method, the buffers, the sizes they came from, the cost so far."""
        return {
            "method": "stream",
            "detail": (f"read-modify-write of one word per {self.line_bytes}-byte line of a buffer "
                       f"{self.factor}x the last-level cache, untimed, before every call; first a buffer "
                       f"{self.factor}x the private cache on each other core the thread may run on"),
            "factor": self.factor,
            "buffer_bytes": self.buffer_bytes,
            "private_buffer_bytes": self.private_buffer_bytes,
            "line_bytes": self.line_bytes,
            "cache_sizes": self.sizes,
            "flushes": self.flushes,
            "flush_s": self.flush_seconds / self.flushes if self.flushes else None,
        }


def probe_bytes(sizes: dict[str, Any]) -> int:
    """A working set clearly above the private caches and well inside the last level."""
    llc, private = sizes.get("llc_bytes"), private_bytes(sizes)
    if not isinstance(llc, int):
        return 8 * 1024**2
    return int(min(llc // 2, max(llc // 8, 2 * (private or 0))))


def probe(flush: Callable[[], None] | None, nbytes: int, repeats: int = 15) -> dict[str, Any]:
    """Does ``flush`` make memory cold here? Median time of a read-sum pass over ``nbytes``
    right after ``flush()`` against the same pass repeated warm, interleaved; ``ratio`` = cold / warm.

    ``flush=None`` times the cold passes without any flush (a control whose
    ratio is ~1). The warm pass is the fourth after the cold one: the first
    ones after a flush still pay for writing back the flush's dirty lines.
    Cheap: ``repeats`` flushes and ``5 * repeats`` passes.
    """
    data = np.arange(max(1, nbytes // 8), dtype=np.int64)
    warm, cold = [], []
    for _ in range(repeats):
        for _ in range(3):
            data.sum()
        start = time.perf_counter()
        data.sum()
        warm.append(time.perf_counter() - start)
        if flush is not None:
            flush()
        start = time.perf_counter()
        data.sum()
        cold.append(time.perf_counter() - start)
    w, c = float(np.median(warm)), float(np.median(cold))
    return {"working_set_bytes": int(data.nbytes), "repeats": repeats, "warm_s": w, "cold_s": c, "ratio": c / w}


_SHARED: dict[int | None, ColdCache] = {}


def cold_cache(memory_limit: int | None = None) -> ColdCache:
    """The process's :class:`ColdCache` for ``memory_limit`` (made once: its buffer
    is faulted in at construction, which every group of a sweep need not pay again)."""
    if memory_limit not in _SHARED:
        _SHARED[memory_limit] = ColdCache(memory_limit)
    return _SHARED[memory_limit]


def describe_cold_cache() -> dict[str, Any]:
    """For env.json: how a cold case is made cold on this machine (without allocating the buffer)."""
    sizes = cache_sizes()
    llc, private = sizes.get("llc_bytes"), private_bytes(sizes)
    return {
        "method": "stream",
        "detail": (f"read-modify-write of one word per cache line of a buffer {FACTOR}x the last-level "
                   "cache, untimed, before every timed call (one call a sample); first a buffer "
                   f"{FACTOR}x the private cache on each other core the case's threads may run on"),
        "factor": FACTOR,
        "buffer_bytes": FACTOR * llc if isinstance(llc, int) else None,
        "private_buffer_bytes": FACTOR * private if private else 0,
        "cache_sizes": sizes,
    }
