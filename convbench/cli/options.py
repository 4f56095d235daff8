"""Command-line strings -> the typed values the library takes ("1,2" -> [1, 2], "2/4" -> (2, 4)).

Each parser raises ``ValueError`` naming its option; the library then
checks the values themselves (thread counts, shards) in one place.
"""

from __future__ import annotations

from ..machine.threads import check_thread_count
from ..spec import DTYPES, check_field
from ..sweep.plan import check_shard


def parse_names(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]`` (None stays None: the config's choice)."""
    if text is None:
        return None
    return [n.strip() for n in text.split(",") if n.strip()]


def parse_ints(text: str | None, flag: str) -> list[int] | None:
    """``"1,2"`` -> ``[1, 2]``."""
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated integers, got {text!r}") from None


def parse_dtypes(text: str | None) -> list[str] | None:
    """``--dtype float32,u8s8`` -> ``["float32", "u8s8"]``, each checked."""
    names = parse_names(text)
    if names is not None and not names:
        raise ValueError(f"--dtype takes one or more of {', '.join(DTYPES)}, comma-separated; got {text!r}")
    for name in names or []:
        try:
            check_field("dtype", name)
        except ValueError:
            raise ValueError(f"--dtype takes {', '.join(DTYPES)} (comma-separated); got {name!r}") from None
    return names


def plan_overrides(algorithms: str | None, threads: str | None, layers: str | None,
                   cache: str | None = None, phases: bool = True, dtype: str | None = None) -> dict:
    """``-a``, ``-t``, ``-l``, ``--cache``, ``--no-phases`` and ``--dtype`` as
    :func:`convbench.sweep.plan.plan`'s keyword arguments."""
    counts = parse_ints(threads, "--threads")
    for t in counts or []:
        try:
            check_thread_count(t)
        except ValueError as exc:
            raise ValueError(f"--threads {exc}") from None
    states = parse_names(cache)
    for state in states or []:
        if state not in ("warm", "cold"):
            raise ValueError(f"--cache takes warm, cold or warm,cold; got {state!r}")
    return {"algorithms": parse_names(algorithms), "threads": counts, "layers": parse_names(layers),
            "cache": states, "phases": phases, "dtypes": parse_dtypes(dtype)}


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (1-based: 1/4 ... 4/4) as ``(I, N)``."""
    if text is None:
        return None
    try:
        i_text, n_text = text.split("/")
        shard = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"--shard must look like I/N, e.g. 1/4; got {text!r}") from None
    try:
        return check_shard(shard)
    except ValueError as exc:
        raise ValueError(f"--shard {exc}") from None


#: What ``--format`` takes on list, layers, select and compare.
FORMATS = ("table", "csv", "json")


def parse_format(text: str | None) -> str:
    """``--format``: table, csv or json (any case)."""
    value = (text or "table").strip().lower()
    if value not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {text!r}")
    return value
