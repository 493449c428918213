"""A search's report, from its store alone: a summary, the top-k table, a reward plot.

`build_report` reads the trials; `render` prints them as text (the same text is
written to DIR/report.md); `plot_rewards` draws reward over trials to a PNG with
matplotlib's Agg backend (no display needed). "Improving" is measured plainly:
the mean reward of the first quarter of the trials against the last quarter
(repeats count: they are what the controller chose to sample).

Beside each reward stands what it was computed from (`validation`): the validation
accuracy of an image child (the reward is its cube), a language model's validation
perplexity, the table's 12-epoch validation accuracy. The table evaluator's seconds
are the table's simulated training cost, and are labelled so.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..rewards import ACCURACY_WINDOW
from .store import TrialRecord, TrialStore

REPORT_FILE = "report.md"
PLOT_FILE = "rewards.png"


@dataclass(frozen=True)
class Report:
    config: dict[str, Any]
    trials: list[TrialRecord]
    top: list[TrialRecord]  # the best evaluated trials, best first, distinct architectures
    outputs: dict[str, Any]  # what the search wrote at its end (best files, ONNX status)
    # The Ray backend: how many updates were how many versions stale.
    staleness: dict[int, int] = field(default_factory=dict)

    @property
    def evaluated(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.evaluated]

    @property
    def failed(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.status == "failed"]

    @property
    def over_budget(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.status == "over_budget"]

    @property
    def best(self) -> TrialRecord | None:
        return self.top[0] if self.top else None

    def quarter_means(self) -> tuple[float, float] | None:
        """Mean reward of the first and of the last quarter of the trials (None if < 4)."""
        rewards = [t.reward for t in self.trials]
        quarter = len(rewards) // 4
        if quarter == 0:
            return None
        return _mean(rewards[:quarter]), _mean(rewards[-quarter:])

    def over_budget_shares(self) -> tuple[float, float] | None:
        """The share of proposals over the budget in the first and the last quarter of the
        trials (a repeat of an over-budget proposal counts: the controller proposed it).
        """
        over = {t.id for t in self.over_budget}
        flags = [t.id in over or t.repeat_of in over for t in self.trials]
        quarter = len(flags) // 4
        if quarter == 0:
            return None
        return _mean(flags[:quarter]), _mean(flags[-quarter:])


def validation(metrics: dict[str, Any]) -> tuple[str, float] | None:
    """What a trial's reward was computed from: ("val_acc", the best validation accuracy of
    the reward's window, 0 to 1) for an image child or a table row, ("val_ppl", the lowest
    validation perplexity) for a language model; None when its metrics hold neither."""
    if "valid12" in metrics:  # the table holds percentages
        return "val_acc", float(metrics["valid12"]) / 100.0
    rows = [row for row in metrics.get("epochs") or () if isinstance(row, dict)]
    accuracies = [float(row["val_acc"]) for row in rows if "val_acc" in row]
    if accuracies:
        return "val_acc", max(accuracies[-ACCURACY_WINDOW:])
    perplexities = [float(row["val_ppl"]) for row in rows if "val_ppl" in row]
    if perplexities:
        return "val_ppl", min(perplexities)
    return None


def validation_text(metrics: dict[str, Any]) -> str:
    """`val acc 97.33%`, `val ppl 112.4`, or `-`."""
    found = validation(metrics)
    if found is None:
        return "-"
    key, value = found
    return f"val acc {value:.2%}" if key == "val_acc" else f"val ppl {value:.1f}"


def simulated(config: dict[str, Any]) -> bool:
    """True when the trials' seconds are the table's recorded cost, not time spent."""
    return config.get("evaluator") == "table"


def best_summary(best: TrialRecord, config: dict[str, Any]) -> dict[str, Any]:
    """summary.json's record of the best trial: its reward, what the reward was computed
    from, and its seconds (`simulated_seconds` for the table evaluator)."""
    found = validation(best.metrics)
    seconds_key = "simulated_seconds" if simulated(config) else "seconds"
    costs = {
        "parameters": best.parameters,
        "macs": best.macs,
        "latency_ms": best.metrics.get("latency_ms"),
    }
    return {
        "trial": best.id,
        "reward": best.reward,
        **({} if found is None else {found[0]: found[1]}),
        seconds_key: best.seconds,
        **{key: value for key, value in costs.items() if value is not None},
        "arch": best.arch,
    }


def best_trial(trials: list[TrialRecord]) -> TrialRecord | None:
    """The trained trial with the highest reward (the earliest among equals): over-budget
    proposals were never trained, so the best is within the search's limits."""
    ok = [t for t in trials if t.status == "ok"]
    return max(ok, key=lambda t: (t.reward, -t.id)) if ok else None


def build_report(
    store: TrialStore, *, top: int = 10, outputs: dict[str, Any] | None = None
) -> Report:
    trials = store.trials()
    ranked = sorted((t for t in trials if t.status == "ok"), key=lambda t: (-t.reward, t.id))
    stale = Counter(r.staleness for r in store.rounds() if r.staleness is not None)
    return Report(store.config, trials, ranked[:top], outputs or {}, dict(sorted(stale.items())))


def _mean(values: list[float] | list[bool]) -> float:
    return sum(values) / len(values) if values else math.nan


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _seconds(s: float | None) -> str:
    return "-" if s is None else f"{s:.1f}"


def render(report: Report) -> str:
    """The report as plain text (Markdown: a heading, a list, a table)."""
    config = report.config
    lines = ["# nasforge search report", ""]
    what = ", ".join(
        f"{key} {config[key]}"
        for key in ("space", "strategy", "evaluator", "dataset", "table", "epochs", "seed", "batch")
        if config.get(key) is not None
    )
    lines.append(f"- search: {what}")
    n = len(report.trials)
    evaluated = report.evaluated
    seconds = sum(t.seconds or 0.0 for t in evaluated)
    time_text = (
        f"simulated evaluation time {seconds:,.1f} s (the table's training times, summed "
        "over trials; not time spent)"
        if simulated(config)
        else f"evaluation time {seconds:,.1f} s (summed over trials)"
    )
    lines.append(
        f"- trials: {n:,} of {config.get('trials', n):,}; "
        f"{len(evaluated) - len(report.over_budget):,} distinct "
        f"architectures evaluated, {n - len(evaluated):,} repeats (not re-evaluated), "
        f"{len(report.failed):,} failed{_over_text(report)}; {time_text}"
    )
    lines += _budget_lines(report)
    if config.get("backend") == "ray":
        lines.append(_distributed(config, report.staleness))
    quarters = report.quarter_means()
    if quarters is not None:
        first, last = quarters
        trend = "improved" if last > first else "did not improve"
        lines.append(
            f"- mean reward, first quarter of the trials {first:.4f} -> last quarter "
            f"{last:.4f} ({trend}, {last - first:+.4f})"
        )
    best = report.best
    if best is None:
        lines.append("- best: none (no trial succeeded)")
    else:
        lines.append(
            f"- best: trial {best.id}, reward {best.reward:.6f} "
            f"({validation_text(best.metrics)}): {best.arch}"
        )
    for key, value in report.outputs.items():
        lines.append(f"- {key}: {value}")
    lines += ["", f"## Top {len(report.top)}", ""]
    if report.top:
        seconds_head = "simulated seconds" if simulated(config) else "seconds"
        timed = any("latency_ms" in t.metrics for t in report.top)
        lines.append(
            "| rank | trial | reward | validation | parameters | multiply-adds | "
            + ("latency ms | " if timed else "")
            + f"{seconds_head} | architecture |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if timed else "") + "---|")
        for rank, t in enumerate(report.top, start=1):
            latency = f"{_latency(t)} | " if timed else ""
            lines.append(
                f"| {rank} | {t.id} | {t.reward:.6f} | {validation_text(t.metrics)} | "
                f"{_count(t.parameters)} | {_count(t.macs)} | {latency}{_seconds(t.seconds)} | "
                f"`{t.arch}` |"
            )
    else:
        lines.append("(no successful trial)")
    lines += _pareto_lines(report)
    failures = report.failed
    if failures:
        lines += ["", f"## Failed trials ({len(failures)})", ""]
        for t in failures[:10]:
            lines.append(f"- trial {t.id}: {t.error}")
        if len(failures) > 10:
            lines.append(f"- ... and {len(failures) - 10} more (all in the store)")
    return "\n".join(lines) + "\n"


def _latency(trial: TrialRecord) -> str:
    latency = trial.metrics.get("latency_ms")
    return "-" if latency is None else f"{float(latency):.3f}"


def _over_text(report: Report) -> str:
    over = len(report.over_budget)
    return f", {over:,} over budget (never trained)" if over else ""


def _budget_lines(report: Report) -> list[str]:
    """The limits, the objective and how often the controller proposed over the limits."""
    from .budget import OVER_BUDGET_REWARD, Budget, count_text

    budget = Budget.from_stored(report.config.get("budget"))
    lines = []
    limits = [
        f"{option} {count_text(value)}"
        for option, value in (("--max-params", budget.max_params), ("--max-macs", budget.max_macs))
        if value is not None
    ]
    if limits:
        line = (
            f"- budget: {', '.join(limits)}; an over-budget proposal is told "
            f"{OVER_BUDGET_REWARD:g} (as a failed child)"
        )
        shares = report.over_budget_shares()
        if shares is not None:
            line += (
                f"; proposals over budget, first quarter of the trials {shares[0]:.0%} -> "
                f"last quarter {shares[1]:.0%}"
            )
        lines.append(line)
    target = budget.target
    if budget.objective == "mnas" and target is not None:
        name, value = target
        cost = {"target_params": "parameters", "target_macs": "multiply-adds"}.get(
            name, "latency ms"
        )
        shown = f"{value:g}" if name == "target_latency_ms" else count_text(int(value))
        lines.append(
            f"- objective: mnas, reward = accuracy x ({cost} / {shown}) ^ {budget.w:g} "
            "(MnasNet; the validation column is the raw accuracy)"
        )
    return lines


def _pareto_lines(report: Report) -> list[str]:
    """The Pareto fronts' trials (accuracy vs parameters, vs multiply-adds or latency)."""
    from .pareto import COSTS, PARETO_FILE, pareto_front, second_cost

    lines: list[str] = []
    for cost in ("parameters", second_cost(report.trials)):
        front = pareto_front(report.trials, cost)
        if not front:
            continue
        lines += ["", f"## Pareto front: accuracy vs {COSTS[cost]} ({PARETO_FILE})", ""]
        lines.append(f"| trial | accuracy | {COSTS[cost]} | architecture |")
        lines.append("|---:|---:|---:|---|")
        arch = {t.id: t.arch for t in report.trials}
        for c in front:
            value = getattr(c, cost)
            shown = f"{value:.3f}" if cost == "latency_ms" else f"{value:,}"
            lines.append(f"| {c.trial} | {c.accuracy:.4f} | {shown} | `{arch[c.trial]}` |")
    return lines


def _distributed(config: dict[str, Any], staleness: dict[int, int]) -> str:
    line = (
        f"- backend ray: {config.get('replicas')} replicas x {config.get('children')} children, "
        f"{config.get('ps_shards')} parameter-server shards"
    )
    updates = sum(staleness.values())
    if not updates:
        return line
    mean = sum(k * v for k, v in staleness.items()) / updates
    counts = ", ".join(f"{k}: {v}" for k, v in staleness.items())
    return (
        f"{line}; {updates:,} updates, staleness (versions behind: updates) {counts}; "
        f"mean {mean:.2f}, max {max(staleness)}"
    )


def plot_rewards(report: Report, path: Path) -> Path:
    """Draw reward over trials (evaluated, repeats, failures, running best, moving mean)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    trials = report.trials
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        groups = {
            "evaluated": ([t for t in trials if t.status == "ok"], "o", "tab:blue"),
            "repeat (not re-evaluated)": (
                [t for t in trials if t.status == "repeat"],
                ".",
                "tab:gray",
            ),
            "failed": (report.failed, "x", "tab:red"),
            "over budget (not trained)": (report.over_budget, "v", "tab:purple"),
        }
        for label, (group, marker, colour) in groups.items():
            if group:
                axes.scatter(
                    [t.id for t in group],
                    [t.reward for t in group],
                    marker=marker,
                    s=14,
                    color=colour,
                    label=label,
                    alpha=0.7,
                )
        if trials:
            ids = [t.id for t in trials]
            best, running = -math.inf, []
            for t in trials:
                best = max(best, t.reward)
                running.append(best)
            axes.plot(ids, running, color="tab:green", label="best so far")
            window = max(5, len(trials) // 20)
            rewards = [t.reward for t in trials]
            moving = [_mean(rewards[max(0, i - window + 1) : i + 1]) for i in range(len(rewards))]
            axes.plot(ids, moving, color="tab:orange", label=f"mean of the last {window}")
        axes.set_xlabel("trial")
        axes.set_ylabel("reward")
        config = report.config
        axes.set_title(
            f"{config.get('strategy', '?')} on {config.get('space', '?')} "
            f"({config.get('evaluator', '?')}): reward over trials"
        )
        axes.grid(alpha=0.3)
        if trials:
            axes.legend(loc="lower right", fontsize=8)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path


def write_report(out_dir: Path, report: Report) -> tuple[Path, Path]:
    """Write DIR/report.md, DIR/rewards.png and (when a trial was trained) DIR/pareto.png;
    the paths of the first two."""
    from .pareto import PARETO_FILE, plot_pareto

    text_path = out_dir / REPORT_FILE
    text_path.write_text(render(report), encoding="utf-8")
    config = report.config
    space = Path(str(config.get("space", "?"))).name.removesuffix(".toml")  # a file's name
    title = f"{config.get('strategy', '?')} on {space}: Pareto fronts"
    plot_pareto(report.trials, title, out_dir / PARETO_FILE)
    return text_path, plot_rewards(report, out_dir / PLOT_FILE)
