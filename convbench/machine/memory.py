"""The memory guard: how much memory a case needs, how much there is, sizes as text.

Before a case is prepared the sweep compares what it will hold (input +
output + weights + the algorithm's declared workspace) with what is
available: ``MemAvailable`` of ``/proc/meminfo`` (psutil where there is no
/proc), capped by the run's memory limit. A case that would not fit becomes a
``skipped`` row that states both numbers, instead of a machine brought to
its knees. The isolated worker also caps its own data segment
(``RLIMIT_DATA``) so an algorithm that allocates far beyond what it declared
gets a ``MemoryError`` instead of waking the out-of-memory killer.
"""

from __future__ import annotations

import re

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
    "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3, "gib": 1024**3, "ti": 1024**4,
    "tib": 1024**4,
}


def parse_size(text: str | int | None) -> int | None:
    """``"2GiB"``, ``"500MB"``, ``"1.5G"`` or a byte count as bytes; ``ValueError`` says what is accepted."""
    if text is None or isinstance(text, int):
        if isinstance(text, int) and text < 1:
            raise ValueError(f"must be a positive size, got {text}")
        return text
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise ValueError(
            f"must be a size such as 2GiB, 500MB or 1048576 (bytes); got {text!r}. "
            "Units: B, KB, MB, GB, TB (powers of 1000) and KiB, MiB, GiB, TiB (powers of 1024)."
        )
    value = int(float(m.group(1)) * _UNITS[unit])
    if value < 1:
        raise ValueError(f"must be a positive size, got {text!r}")
    return value


def format_size(n: float | int | None) -> str:
    """Bytes as a short human string in binary units (``1.5 GiB``)."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def _kib_field(path: str, key: str) -> int | None:
    """Bytes of a ``Key:   123 kB`` line of a /proc file, or None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def system_available() -> int | None:
    """Memory the system can give without swapping: MemAvailable, else psutil, else None."""
    value = _kib_field("/proc/meminfo", "MemAvailable")
    if value is not None:
        return value
    try:  # pragma: no cover - systems without /proc
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover
        return None


def available(limit: int | None = None) -> tuple[int | None, str]:
    """``(bytes, where from)``: the smaller of MemAvailable and ``limit``."""
    system = system_available()
    if limit is not None and (system is None or limit <= system):
        return limit, f"the memory limit of {format_size(limit)}"
    return system, "MemAvailable"


def case_needs(spec: object, workspace: int) -> dict[str, int]:
    """The bytes a case holds: input, output, weights, the declared workspace and their total."""
    parts = {
        "input": int(spec.input_bytes),  # type: ignore[attr-defined]
        "output": int(spec.output_bytes),  # type: ignore[attr-defined]
        "weights": int(spec.weight_bytes),  # type: ignore[attr-defined]
        "workspace": int(workspace),
    }
    parts["total"] = sum(parts.values())
    return parts


def check_fits(spec: object, workspace: int, limit: int | None) -> str | None:
    """``None`` if the case fits, else the reason of its ``skipped`` row, with the numbers."""
    need = case_needs(spec, workspace)
    have, source = available(limit)
    if have is None or need["total"] <= have:
        return None
    detail = " + ".join(f"{k} {format_size(v)}" for k, v in need.items() if k != "total")
    return (
        f"memory guard: the case needs {format_size(need['total'])} ({need['total']} bytes: {detail}) "
        f"but only {format_size(have)} ({have} bytes) is available ({source}); "
        "raise the memory limit or free memory to run it"
    )


#: Room left above the cap for the JIT compiler, thread stacks and malloc arenas.
RLIMIT_HEADROOM = 1024**3


def cap_process_memory(limit: int | None) -> dict[str, int | None]:
    """Cap this process's data segment at what it uses now + ``limit`` + headroom.

    Used in the isolated worker only (never in the user's process): an
    allocation past the cap fails with ``MemoryError`` instead of waking the
    OOM killer. ``RLIMIT_DATA`` (private writable memory) rather than
    ``RLIMIT_AS``: address-space reservations (PROT_NONE arenas, numba's
    and OpenBLAS's mappings) do not count against it. ``limit=None`` caps at
    MemAvailable. Returns what was set (``None`` where it could not be).
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not Unix
        return {"rlimit_data": None}
    budget = limit if limit is not None else system_available()
    used = _kib_field("/proc/self/status", "VmData")
    if budget is None or used is None:
        return {"rlimit_data": None}
    cap = used + budget + RLIMIT_HEADROOM
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    except (ValueError, OSError):  # pragma: no cover
        return {"rlimit_data": None}
    return {"rlimit_data": cap}
