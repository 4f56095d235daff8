"""Merging the shard folders of one sweep (``run --shard I/N`` on several machines) into one."""

from __future__ import annotations

from pathlib import Path

from .io import ResultsError, ResultsWriter, read_results
from .schema import SAMPLE_COLUMNS, SUMMARY_COLUMNS


def merge_results(folders: list[str | Path], out_dir: str | Path) -> Path:
    """Join shard folders of one sweep into ``out_dir``; refuses different configs."""
    import pandas as pd

    if not folders:
        raise ResultsError("merge needs at least one results folder")
    parts = [read_results(f) for f in folders]
    first = parts[0]
    for other in parts[1:]:
        if other.config != first.config:
            raise ResultsError(
                f"{other.path} was run with a different config than {first.path} "
                "(compare their config.yaml); only shards of one sweep can be merged"
            )
    summary = pd.concat([p.summary for p in parts], ignore_index=True)
    dup = summary["case_id"][summary["case_id"].duplicated()]
    if len(dup):
        owners = [str(p.path) for p in parts if dup.iloc[0] in set(p.summary["case_id"])]
        raise ResultsError(
            f"case {dup.iloc[0]!r} appears in more than one folder ({', '.join(owners)}); "
            "shards must not overlap"
        )
    summary = summary.sort_values("case_index", kind="stable")
    samples = pd.concat([p.samples for p in parts], ignore_index=True)
    samples = samples.sort_values(["case_index", "sample"], kind="stable")

    writer = ResultsWriter(out_dir)
    writer.close()
    summary[SUMMARY_COLUMNS].to_csv(writer.dir / "summary.csv", index=False)
    samples[SAMPLE_COLUMNS].to_csv(writer.dir / "samples.csv", index=False)
    (writer.dir / "config.yaml").write_text((first.path / "config.yaml").read_text())
    shards = [p.env.get("shard") for p in parts]
    totals = {s.get("count") for s in shards if s}
    expected = totals.pop() if len(totals) == 1 else None
    got = sorted(s["index"] for s in shards if s)
    complete = expected is not None and got == list(range(1, expected + 1))
    env = {k: v for k, v in first.env.items() if k not in ("shard", "schema_version")}
    env.update(
        merged_from=[str(p.path) for p in parts],
        shard=None,
        shards=[{"folder": str(p.path), "shard": p.env.get("shard"), "host": p.env.get("system", {}).get("hostname"),
                 "cpu": p.env.get("cpu", {}).get("model"), "start_time": p.env.get("start_time"),
                 "end_time": p.env.get("end_time")} for p in parts],
        complete=bool(complete) or all(s is None for s in shards),
        start_time=min((p.env.get("start_time") or "" for p in parts), default=None),
        end_time=max((p.env.get("end_time") or "" for p in parts), default=None),
    )
    writer.write_env(env)
    return writer.dir
