"""Results across machines: one folder or several, split by the ``machine`` column.

A merged folder of a distributed run (``run --executor``), a ``convbench
merge`` of runs from several machines, or several folders given at once all
become one :class:`~convbench.results.Results` whose rows name their machine
(:func:`load`). The analysis then works per machine, never across: a speedup
is a ratio of two algorithms on the *same* machine, a winner is the winner
on that machine, and where machines disagree it says so:

- :func:`select_per_machine` / :func:`winners_across`: the best algorithm per
  layer on each machine, and the layers whose winner changes;
- :func:`compare_folders`: ``convbench compare``: two runs of the same
  machines (run against run, per machine), or one machine against another
  on the cases both measured;
- :func:`machines_section`: the report's "does a claim hold on one machine and
  not another" (the report passes its judge in, so this module never imports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..machine.identity import MACHINE_COLUMN, machine_env, machine_name
from ..results.schema import VARIANT_KEYS
from .compare import CompareError, compare_runs


def _with_machine(res: Any) -> Any:
    """``res`` with a ``machine`` column in both frames (its env.json's machine where absent)."""
    name = machine_name(res.env)
    for df in (res.summary, res.samples):
        if MACHINE_COLUMN not in df.columns:
            df[MACHINE_COLUMN] = name
        else:  # a missing row of a distributed run belongs to no machine
            df[MACHINE_COLUMN] = df[MACHINE_COLUMN].astype(object).where(df[MACHINE_COLUMN].notna(), "").astype(str)
    envs = res.env.get("machines") or {name: machine_env(res.env)}
    res.env = {**res.env, "machines": dict(envs)}
    return res


def load(folders: Sequence[str | Path], samples: bool | Sequence[str] = True) -> Any:
    """One or several results folders as one :class:`~convbench.results.Results` with a machine column
    (``samples`` as :func:`~convbench.results.read_results` takes it).

    A case may appear once per machine; the same case twice on one machine
    (the same run given twice, or overlapping shards) is refused.
    ``env["machines"]`` maps each machine to its own CPU, calibration, ...
    """
    import pandas as pd

    from ..results import ResultsError, read_results

    if not folders:
        raise ResultsError("give at least one results folder")
    parts = [_with_machine(read_results(f, samples=samples)) for f in folders]
    if len(parts) == 1:
        return parts[0]
    summary = pd.concat([p.summary for p in parts], ignore_index=True)
    measured = summary[summary["status"] != "missing"]
    dup = measured[measured.duplicated(["case_id", MACHINE_COLUMN])]
    if len(dup):
        case, machine = dup["case_id"].iloc[0], dup[MACHINE_COLUMN].iloc[0]
        owners = [str(p.path) for p in parts if ((p.summary["case_id"] == case)
                                                 & (p.summary[MACHINE_COLUMN] == machine)).any()]
        raise ResultsError(f"case {case!r} on {machine} is in more than one of the folders ({', '.join(owners)}); "
                           "give each machine's run once")
    samples = pd.concat([p.samples for p in parts], ignore_index=True)
    env = dict(parts[0].env)
    env["machines"] = {k: v for p in parts for k, v in p.env["machines"].items()}
    env["folders"] = [str(p.path) for p in parts]
    return replace(parts[0], summary=summary, samples=samples, env=env)


def machines_of(summary: Any) -> list[str]:
    """The machines of a summary, in order of first appearance (rows of no machine left out)."""
    if MACHINE_COLUMN not in summary.columns:
        return []
    return [m for m in dict.fromkeys(summary[MACHINE_COLUMN].astype(str)) if m and m != "nan"]


def only_machine(res: Any, machine: str) -> Any:
    """The rows of one machine, with an env.json as that machine would have written it."""
    s = res.summary[res.summary[MACHINE_COLUMN] == machine].reset_index(drop=True)
    p = res.samples[res.samples[MACHINE_COLUMN] == machine].reset_index(drop=True)
    env = {**res.env, **((res.env.get("machines") or {}).get(machine) or {})}
    return replace(res, summary=s, samples=p, env=env)


def per_machine(summary: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn`` applied to each machine's rows, concatenated, ``machine`` the first column."""
    import pandas as pd

    frames = []
    for m in machines_of(summary):
        out = fn(summary[summary[MACHINE_COLUMN] == m].reset_index(drop=True))
        out.insert(0, MACHINE_COLUMN, m)
        frames.append(out)
    return pd.concat(frames, ignore_index=True) if frames else fn(summary.iloc[0:0])


def select_per_machine(summary: Any) -> Any:
    """:func:`convbench.analysis.select.select_best` on each machine (``machine`` column first)."""
    from .select import select_best

    return per_machine(summary, select_best)


def winners_across(selection: Any) -> Any:
    """One row per layer variant: its winner on each machine (a column per machine) and
    ``agree``: the same winner on every machine that has one (only variants measured on
    two or more machines are listed)."""
    import pandas as pd

    if selection.empty or MACHINE_COLUMN not in selection.columns:
        return pd.DataFrame(columns=[*VARIANT_KEYS, "agree"])
    machines = list(dict.fromkeys(selection[MACHINE_COLUMN]))
    wide = selection.pivot_table(index=VARIANT_KEYS, columns=MACHINE_COLUMN, values="algorithm",
                                 aggfunc="first", sort=False)
    wide = wide.reindex(columns=machines)
    has = wide.notna() & (wide != "")
    wide = wide[has.sum(axis=1) >= 2]
    agree = [len({v for v in row if isinstance(v, str) and v}) == 1 for row in wide.to_numpy()]
    out = wide.reset_index()
    out.columns.name = None
    out["agree"] = agree
    return out


def write_selections(folders: Sequence[str | Path], out: str | Path | None = None) -> tuple[Path, Any, Any]:
    """``convbench select``: the best algorithm per layer on each machine, written as CSV.

    One single-machine folder: exactly :func:`~convbench.analysis.select.write_selection`.
    Otherwise the tables gain a ``machine`` column and go to ``out`` (default:
    the folder, when there is one).
    """
    from ..results import ResultsError
    from .select import NETWORK_FILE, SELECTION_FILE, network_comparison, select_best, write_selection

    if out is None and len(folders) > 1:
        raise ResultsError("several folders: say where selection.csv goes with --out DIR")
    res = load(folders, samples=False)  # the selection needs the summary only
    machines = machines_of(res.summary)
    if len(folders) == 1 and len(machines) <= 1 and out is None:
        return write_selection(folders[0])
    dest = Path(out if out is not None else folders[0])
    dest.mkdir(parents=True, exist_ok=True)
    if len(machines) <= 1:  # one machine: the plain tables, wherever they go
        selection = select_best(res.summary)
        network = network_comparison(res.summary, selection)
    else:
        measured = res.summary[res.summary[MACHINE_COLUMN] != ""]
        selection = select_per_machine(measured)
        network = per_machine(measured, network_comparison)
    selection.to_csv(dest / SELECTION_FILE, index=False)
    network.to_csv(dest / NETWORK_FILE, index=False)
    return dest / SELECTION_FILE, selection, network


# -- compare ---------------------------------------------------------------------------


@dataclass
class MachineComparison:
    """What :func:`compare_folders` found: one table, and how to read it."""

    mode: str  # "runs": B against A on each machine; "machines": each machine against the first
    table: Any
    normalised: bool = False  # ratios of times in reference-kernel units (run against run only)
    notes: list[str] = field(default_factory=list)
    winners: Any = None  # winners_across(...) in "machines" mode
    reference: str = ""  # the machine the others are compared with ("machines" mode)

    @property
    def regressions(self) -> Any:
        """Slower or broken cases: only meaningful run against run (another machine is not a regression)."""
        if self.mode != "runs":
            return self.table.iloc[0:0]
        return self.table[self.table["verdict"].isin(["slower", "broken"])]


def _case_keys(summary: Any) -> set[tuple]:
    from ..results.schema import CASE_KEYS

    return {tuple(r) for r in summary[CASE_KEYS].itertuples(index=False)}


def _restrict(res: Any, keys: set[tuple]) -> Any:
    from ..results.schema import CASE_KEYS

    mask = [tuple(r) in keys for r in res.summary[CASE_KEYS].itertuples(index=False)]
    return replace(res, summary=res.summary[mask].reset_index(drop=True))


def compare_folders(folders: Sequence[str | Path], *, threshold: float = 0.10, raw: bool = False) -> MachineComparison:
    """``convbench compare``, for any number of folders and machines.

    Two folders with the same machine(s): run against run on each machine
    (:func:`~convbench.analysis.compare.compare_runs`; one machine: exactly
    the classic comparison). Otherwise the folders are pooled and each
    machine is compared with the first on the cases both measured, in plain
    time (ratio = time on that machine / time on the first: reference-kernel
    units would divide out the very difference asked about), with the
    layers whose winner differs between machines.
    """
    import pandas as pd

    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    parts = [load([f], samples=False) for f in folders]  # verdicts come from the summaries
    sets = [machines_of(p.summary) for p in parts]
    if len(parts) == 2 and set(sets[0]) == set(sets[1]):
        tables, notes, normalised = [], [], False
        for m in sets[0]:
            a, b = only_machine(parts[0], m), only_machine(parts[1], m)
            result = compare_runs(a, b, threshold=threshold, raw=raw, label_a=str(folders[0]), label_b=str(folders[1]))
            t = result.table
            if len(sets[0]) > 1:
                t.insert(0, MACHINE_COLUMN, m)
            tables.append(t)
            notes += [n for n in result.notes if n not in notes]
            normalised = normalised or result.normalised
        return MachineComparison("runs", pd.concat(tables, ignore_index=True), normalised, notes)
    res = load(folders, samples=False)
    machines = machines_of(res.summary)
    if len(machines) < 2:
        raise CompareError("compare needs two runs (A B) or results from more than one machine; "
                           f"{', '.join(map(str, folders))} hold(s) one machine only")
    ref = only_machine(res, machines[0])
    tables, notes = [], [f"each machine against {machines[0]}: ratio = its time / the time there"]
    for m in machines[1:]:
        other = only_machine(res, m)
        common = _case_keys(ref.summary) & _case_keys(other.summary)
        if not common:
            notes.append(f"{m} measured no case that {machines[0]} measured (shards of one sweep?): "
                         "nothing to set side by side")
            continue
        result = compare_runs(_restrict(ref, common), _restrict(other, common), threshold=threshold, raw=True,
                              label_a=machines[0], label_b=m)
        t = result.table
        t.insert(0, MACHINE_COLUMN, m)
        tables.append(t)
    selection = select_per_machine(res.summary[res.summary[MACHINE_COLUMN] != ""])
    winners = winners_across(selection)
    changed = int((~winners["agree"]).sum()) if len(winners) else 0
    if len(winners):
        notes.append(f"the fastest algorithm differs between machines on {changed} of {len(winners)} layer variants")
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=[MACHINE_COLUMN, "layer", "algorithm", "layout", "dtype", "threads", "verdict"])
    return MachineComparison("machines", table, False, notes, winners, machines[0])


# -- the report: where a claim holds --------------------------------------------------------


def headline_results(res: Any) -> Any:
    """What the report's main verdicts judge: the first machine's rows when there are several
    (a ratio of two algorithms is only meaningful on one machine), else ``res`` itself."""
    machines = machines_of(res.summary)
    return only_machine(res, machines[0]) if len(machines) > 1 else res


def machines_section(res: Any, judge: Callable[[Any, Any], list[Any]], labels: Mapping[str, str]) -> list[str]:
    """Markdown lines: each claim's verdict on each machine, and where they differ ([] for one machine).

    ``judge(summary, samples)`` returns the report's findings (objects with
    ``claim``, ``reference`` and ``verdict``) for one machine's rows;
    ``labels`` names each reference. (The report passes its own, so this
    module does not import it back.)
    """
    machines = machines_of(res.summary)
    if len(machines) < 2:
        return []
    by_machine = {}
    for m in machines:
        mine = only_machine(res, m)
        by_machine[m] = {(f.claim, f.reference): f.verdict for f in judge(mine.summary, mine.samples)}
    keys = sorted({k for found in by_machine.values() for k in found},
                  key=lambda k: (k[0], list(labels).index(k[1]) if k[1] in labels else len(labels)))
    lines = ["## Across machines", "",
             f"The verdicts above are those of {machines[0]}; here each of the {len(machines)} machines is judged "
             "on its own rows (speedups are ratios on one machine, never across).", ""]
    header = ["claim", "against", *machines]
    rows, differ = [], []
    for claim, ref in keys:
        verdicts = [by_machine[m].get((claim, ref), "-") for m in machines]
        rows.append([str(claim), labels.get(ref, ref), *[f"**{v}**" for v in verdicts]])
        tested = {m: v for m, v in zip(machines, verdicts) if v not in ("-", "not tested")}
        if len(set(tested.values())) > 1:
            where = "; ".join(f"{v} on {m}" for m, v in tested.items())
            differ.append(f"- Claim {claim} against {labels.get(ref, ref)}: {where}.")
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    lines += (["Where the verdict depends on the machine:", "", *differ, ""] if differ
              else ["Every claim has the same verdict on every machine that tested it.", ""])
    return lines


def slug(machine: str) -> str:
    """A folder name for a machine: ``node17-amd-epyc-7b13``."""
    return re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")[:60] or "machine"
