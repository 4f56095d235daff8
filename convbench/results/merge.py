"""Merging the shard folders of one sweep (``run --shard I/N`` on several machines) into one."""

from __future__ import annotations

from pathlib import Path

from .io import ResultsError, ResultsWriter, read_csv, read_results
from .schema import REPETITION_COLUMNS, SAMPLE_COLUMNS, SUMMARY_COLUMNS, added_since


def merge_results(folders: list[str | Path], out_dir: str | Path) -> Path:
    """Join shard folders of one sweep into ``out_dir``; refuses different configs.

    Every row gets a ``machine`` column (its folder's machine, or the one it
    already has), and a case may appear once per machine: shards of one
    sweep from several nodes, or whole runs of one config on several
    machines, merge into one folder that the analysis splits by machine.
    """
    import pandas as pd

    from ..machine.identity import MACHINE_COLUMN, machine_env, machine_name

    if not folders:
        raise ResultsError("merge needs at least one results folder")
    parts = [read_results(f) for f in folders]
    reps = []
    for i, p in enumerate(parts):  # a folder of one run names no machine in its rows: its env.json does
        rep_path = p.path / "repetitions.csv"
        added = added_since("summary.csv", p.env["schema_version"])  # an older folder lacks the newer columns
        r = (read_csv(rep_path, REPETITION_COLUMNS, added) if rep_path.is_file()
             else pd.DataFrame(columns=REPETITION_COLUMNS))
        reps.append(r[r["case_id"].isin(set(p.summary["case_id"]))])  # those of finished cases
        for df in (p.summary, p.samples, reps[-1]):
            if MACHINE_COLUMN not in df.columns:
                df[MACHINE_COLUMN] = machine_name(p.env)
            df["_part"] = i  # the same case of two machines: in the order the folders were given
    first = parts[0]
    for other in parts[1:]:
        if other.config != first.config:
            raise ResultsError(
                f"{other.path} was run with a different config than {first.path} "
                "(compare their config.yaml); only shards of one sweep can be merged"
            )
    summary = pd.concat([p.summary for p in parts], ignore_index=True)
    dup = summary[summary.duplicated(["case_id", MACHINE_COLUMN])]
    if len(dup):
        case, machine = dup["case_id"].iloc[0], dup[MACHINE_COLUMN].iloc[0]
        owners = [str(p.path) for p in parts
                  if ((p.summary["case_id"] == case) & (p.summary[MACHINE_COLUMN] == machine)).any()]
        raise ResultsError(
            f"case {case!r} on {machine} appears in more than one folder ({', '.join(owners)}); "
            "shards must not overlap"
        )
    summary = summary.sort_values(["case_index", "_part"], kind="stable")
    samples = pd.concat([p.samples for p in parts], ignore_index=True)
    samples = samples.sort_values(["case_index", "_part", "repetition", "sample"], kind="stable")
    repetitions = pd.concat(reps, ignore_index=True).sort_values(["case_index", "_part", "repetition"], kind="stable")

    writer = ResultsWriter(out_dir)
    writer.close()
    summary[[*SUMMARY_COLUMNS, MACHINE_COLUMN]].to_csv(writer.dir / "summary.csv", index=False)
    samples[[*SAMPLE_COLUMNS, MACHINE_COLUMN]].to_csv(writer.dir / "samples.csv", index=False)
    repetitions[[*REPETITION_COLUMNS, MACHINE_COLUMN]].to_csv(writer.dir / "repetitions.csv", index=False)
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
        # each machine's own CPU, calibration, ...: the figures of one machine need its own roof
        machines={k: v for p in parts
                  for k, v in (p.env.get("machines") or {machine_name(p.env): machine_env(p.env)}).items()},
        start_time=min((p.env.get("start_time") or "" for p in parts), default=None),
        end_time=max((p.env.get("end_time") or "" for p in parts), default=None),
    )
    writer.write_env(env)
    return writer.dir
