"""A one-shot search's report, from its store (and summary.json once it has ended).

report.md holds the search's settings, the derived architecture and its final
training, and one row per epoch. The plots (matplotlib's Agg backend, no display):

- history.png: the supernet's training loss and accuracy and the held-out accuracy
  per epoch (every strategy);
- darts, darts1: alphas.png: per cell, the architecture weights (softmax per edge) of
  the last epoch as a heat map, edges x ops, each cell annotated, beside each op's
  weight over the epochs (the mean over the edges: where the mixture drifts);
- enas: controller.png: the controller's entropy, and its reward with the moving-average
  baseline, per epoch;
- rsws: candidates.png: the derived candidate's shared-weight accuracy (the score it
  won with, on the architecture half) and its held-out accuracy, per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..choices import ONESHOT_DESCRIPTIONS
from .report import REPORT_FILE

HISTORY_PLOT = "history.png"
STRATEGY_PLOTS = {
    "darts": "alphas.png",
    "darts1": "alphas.png",
    "enas": "controller.png",
    "rsws": "candidates.png",
}
# What each strategy adds to the epoch table: (record key, column heading).
EXTRA_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "enas": (("entropy", "entropy"), ("reward", "reward"), ("baseline", "baseline")),
    "rsws": (("derived_score", "derived's score"),),
}


@dataclass(frozen=True)
class OneShotReport:
    config: dict[str, Any]
    history: list[dict[str, Any]]  # the stored epochs' records, in order
    summary: dict[str, Any]  # summary.json ({} before the search's end)
    cells: dict[str, tuple[list[str], list[str]]]  # section -> (edge labels, op names)

    @property
    def strategy(self) -> str:
        return str(self.config.get("strategy"))

    def plots(self) -> list[str]:
        return [HISTORY_PLOT, STRATEGY_PLOTS[self.strategy]]


def build_oneshot_report(store: Any, summary: dict[str, Any]) -> OneShotReport:
    config = store.config
    return OneShotReport(config, store.epoch_records(), summary, _cell_labels(config))


def _cell_labels(config: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    """Each cell's edge labels (S<from>->S<to>, the supernet's row order) and op names,
    from the space (no data set needed); {} for a space without cells."""
    from nasforge.controller.space import load_space
    from nasforge.controller.space_cells import CellsSpace
    from nasforge.grammar import ops

    try:
        space = load_space(str(config.get("space")))
    except Exception:  # a space file moved away since: the plots go without names
        return {}
    if not isinstance(space, CellsSpace) or space.skeleton not in ops.SKELETONS:
        return {}
    info = ops.SKELETONS[space.skeleton]
    first = info.inputs
    labels = [f"S{j}->S{i}" for i in range(first, first + space.nodes) for j in range(i)]
    return {section: (labels, list(space.ops)) for section in info.sections}


def render_oneshot(report: OneShotReport) -> str:
    config, history = report.config, report.history
    lines = ["# nasforge one-shot search report", ""]
    strategy = report.strategy
    lines.append(f"- strategy: {strategy}: {ONESHOT_DESCRIPTIONS.get(strategy, '')}")
    what = ", ".join(
        f"{key} {config[key]}"
        for key in ("space", "dataset", "epochs", "batch", "seed", "device")
        if config.get(key) is not None
    )
    options = config.get("options") or {}
    lines.append(f"- search: {what}" + (f", options {options}" if options else ""))
    seconds = sum(float(r.get("seconds") or 0.0) for r in history)
    lines.append(
        f"- epochs: {len(history)} of {config.get('epochs')} stored; search time "
        f"{seconds:,.1f} s (summed over epochs)"
    )
    lines += _final_lines(report)
    lines += ["", "## Epochs", ""]
    lines += _epoch_table(report) if history else ["(no epoch stored yet)"]
    derived = _derived_changes(history)
    if derived:
        lines += ["", "## Derived architecture, where it changed", ""]
        lines += [f"- epoch {epoch}: `{arch}`" for epoch, arch in derived]
    lines += ["", "## Plots", ""]
    lines += [f"- [{name}]({name})" for name in report.plots()]
    return "\n".join(lines) + "\n"


def _final_lines(report: OneShotReport) -> list[str]:
    summary = report.summary
    best = summary.get("best") if isinstance(summary.get("best"), dict) else None
    if best is None:
        return ["- derived: not yet (the search has not ended; `--resume` continues it)"]
    lines = [f"- derived: `{best.get('arch')}`"]
    parameters = best.get("parameters")
    count = f", {parameters:,} parameters" if isinstance(parameters, int) else ""
    if isinstance(best.get("val_acc"), float):
        lines.append(f"- final model: validation accuracy {best['val_acc']:.2%}{count}")
    outputs = summary.get("outputs")
    if isinstance(outputs, dict):
        lines += [f"- {name}: {text}" for name, text in outputs.items()]
    return lines


def _number(value: Any, form: str) -> str:
    return format(value, form) if isinstance(value, (int, float)) else "-"


def _epoch_table(report: OneShotReport) -> list[str]:
    extra = EXTRA_COLUMNS.get(report.strategy, ())
    heads = ["epoch", "lr", "train loss", "train acc", "held-out acc", *(h for _, h in extra)]
    lines = ["| " + " | ".join([*heads, "seconds"]) + " |"]
    lines.append("|" + "---:|" * (len(heads) + 1))
    for record in report.history:
        cells = [
            str(record.get("epoch", "-")),
            _number(record.get("lr"), ".4g"),
            _number(record.get("train_loss"), ".4f"),
            _number(record.get("train_acc"), ".2%"),
            _number(record.get("valid_acc"), ".2%"),
            *(_number(record.get(key), ".4f") for key, _ in extra),
            _number(record.get("seconds"), ".1f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _derived_changes(history: list[dict[str, Any]]) -> list[tuple[Any, str]]:
    changes: list[tuple[Any, str]] = []
    for record in history:
        arch = record.get("derived")
        if isinstance(arch, str) and (not changes or changes[-1][1] != _one_line(arch)):
            changes.append((record.get("epoch"), _one_line(arch)))
    return changes


def _one_line(arch: str) -> str:
    return " ".join(arch.split())


# --- plots ------------------------------------------------------------------------


def write_oneshot_report(out_dir: Path, report: OneShotReport) -> list[Path]:
    """Write DIR/report.md and the plots; their paths."""
    path = out_dir / REPORT_FILE
    path.write_text(render_oneshot(report), encoding="utf-8")
    return [path, *plot_oneshot(report, out_dir)]


def plot_oneshot(report: OneShotReport, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    draw = {
        "darts": _plot_alphas,
        "darts1": _plot_alphas,
        "enas": _plot_controller,
        "rsws": _plot_candidates,
    }[report.strategy]
    paths = [out_dir / name for name in report.plots()]
    _save(_plot_history(report), paths[0])
    _save(draw(report), paths[1])
    return paths


def _save(figure: Any, path: Path) -> None:
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    try:
        for axes in figure.axes:
            if axes.get_xlabel() == "epoch":  # whole epochs only
                axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[Any], list[float]]:
    """(epochs, values) of the records that hold a number under `key`."""
    rows = [r for r in history if isinstance(r.get(key), (int, float))]
    return [r.get("epoch") for r in rows], [float(r[key]) for r in rows]


def _title(report: OneShotReport, what: str) -> str:
    config = report.config
    return f"{report.strategy} on {config.get('space')} ({config.get('dataset')}): {what}"


def _plot_history(report: OneShotReport) -> Any:
    from matplotlib import pyplot as plt

    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    epochs, losses = _series(report.history, "train_loss")
    loss_axes.plot(epochs, losses, marker="o", color="tab:red")
    loss_axes.set(xlabel="epoch", ylabel="training loss", title="supernet training loss")
    for key, label in (("train_acc", "training"), ("valid_acc", "held-out (validation split)")):
        epochs, values = _series(report.history, key)
        acc_axes.plot(epochs, values, marker="o", label=label)
    acc_axes.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0.0, 1.02))
    acc_axes.legend(fontsize=8)
    for axes in (loss_axes, acc_axes):
        axes.grid(alpha=0.3)
    figure.suptitle(_title(report, "the supernet per epoch"))
    return figure


def _alpha_tables(report: OneShotReport) -> list[tuple[str, list[list[list[float]]]]]:
    """(section, the weights of each epoch: edges x ops) per cell of the records' alphas."""
    sections: dict[str, list[list[list[float]]]] = {}
    for record in report.history:
        alphas = record.get("alphas")
        if isinstance(alphas, dict):
            for section, rows in alphas.items():
                sections.setdefault(str(section), []).append(rows)
    return list(sections.items())


def _plot_alphas(report: OneShotReport) -> Any:
    from matplotlib import pyplot as plt

    tables = _alpha_tables(report)
    figure, grid = plt.subplots(
        max(1, len(tables)), 2, figsize=(12, 4.5 * max(1, len(tables))), dpi=100, squeeze=False
    )
    for (section, epochs), (heat, drift) in zip(tables, grid, strict=False):
        final = epochs[-1]
        edges, ops = report.cells.get(_cell_key(section, report), ([], []))
        if len(edges) != len(final) or len(ops) != len(final[0]):
            edges = [f"edge {k}" for k in range(len(final))]
            ops = [f"op {k}" for k in range(len(final[0]))]
        # The colours span the table's own range: early in a search every weight is near
        # uniform (1/ops), and the differences are what matters.
        image = heat.imshow(final, cmap="viridis", aspect="auto")
        heat.set_xticks(range(len(ops)), ops, rotation=30, ha="right", fontsize=8)
        heat.set_yticks(range(len(edges)), edges, fontsize=8)
        low, high = min(map(min, final)), max(map(max, final))
        light = low + 0.6 * (high - low)  # dark cells get white text
        for row, values in enumerate(final):
            for column, value in enumerate(values):
                colour = "white" if value < light else "black"
                heat.text(
                    column, row, f"{value:.4f}", ha="center", va="center", fontsize=7, color=colour
                )
        name = "the cell" if section == "cell" else f"{section} cell"
        heat.set_title(f"{name}: weights after epoch {len(epochs)} (uniform {1 / len(ops):.3f})")
        figure.colorbar(image, ax=heat, fraction=0.046)
        for k, op in enumerate(ops):
            means = [sum(row[k] for row in table) / len(table) for table in epochs]
            drift.plot(range(1, len(epochs) + 1), means, marker="o", label=op)
        drift.set(xlabel="epoch", ylabel="mean weight over the edges", title=f"{name}: per op")
        drift.ticklabel_format(axis="y", useOffset=False)
        drift.grid(alpha=0.3)
        drift.legend(fontsize=8)
    if not tables:
        grid[0][0].text(0.5, 0.5, "no architecture weights stored yet", ha="center")
    figure.suptitle(_title(report, "architecture weights (softmax per edge)"))
    return figure


def _cell_key(section: str, report: OneShotReport) -> str:
    """The space's section name of a record's alphas key (records say reduce, the
    language says reduction)."""
    if section in report.cells:
        return section
    return {"reduce": "reduction"}.get(section, section)


def _plot_controller(report: OneShotReport) -> Any:
    from matplotlib import pyplot as plt

    figure, (entropy_axes, reward_axes) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    epochs, entropy = _series(report.history, "entropy")
    entropy_axes.plot(epochs, entropy, marker="o", color="tab:purple")
    entropy_axes.set(xlabel="epoch", ylabel="entropy (nats)", title="controller entropy")
    for key, label in (("reward", "reward"), ("baseline", "baseline (moving average)")):
        epochs, values = _series(report.history, key)
        reward_axes.plot(epochs, values, marker="o", label=label)
    epochs, skips = _series(report.history, "skip_rate")
    if skips:
        reward_axes.plot(epochs, skips, marker=".", linestyle="--", label="skip rate")
    reward_axes.set(xlabel="epoch", ylabel="mean per epoch", title="controller reward")
    reward_axes.legend(fontsize=8)
    for axes in (entropy_axes, reward_axes):
        axes.grid(alpha=0.3)
    figure.suptitle(_title(report, "the controller per epoch"))
    return figure


def _plot_candidates(report: OneShotReport) -> Any:
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    series = (
        ("derived_score", "score that won (shared weights, architecture half)"),
        ("valid_acc", "held-out accuracy (shared weights, validation split)"),
    )
    for key, label in series:
        epochs, values = _series(report.history, key)
        axes.plot(epochs, values, marker="o", label=label)
    axes.set(xlabel="epoch", ylabel="accuracy", ylim=(0.0, 1.02))
    axes.set_title(_title(report, "the derived candidate"))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figure
