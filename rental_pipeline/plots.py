"""Pictures for the asset pages: small PNG charts drawn with matplotlib's Agg backend.

Every chart has a `*_figure` function that draws it from plain arrays or frames (what the tests look
at: tick labels, where the legend sits, the notes) and a function of the same name without the suffix
that returns it as PNG bytes; `markdown_image` wraps those in the markdown Dagster's UI renders
(`![alt](data:image/png;base64,...)`). Nothing here knows Dagster.

Two rules hold for every chart: a legend never covers data (it sits in headroom made above the
tallest bar, or outside the axes), and a log axis is labelled in plain dollars ($50, $100, $200),
never in powers of ten.

matplotlib takes about 0.4 s to import, so it is imported inside the functions that draw, never
when this module is: loading the code location stays fast, and a step pays only when it draws.
Figures are built with `matplotlib.figure.Figure` and rendered by the Agg canvas directly, without
pyplot and its global state. Pictures are kept small (600 x 400 pixels at 80 dpi, a 64-colour
palette) because each one is stored in the Dagster event log with its materialization.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # for annotations only: importing matplotlib at load time is what this module avoids
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 80
WIDTH, HEIGHT = 600, 400
SCATTER_POINTS = 2_000  # a scatter of more points is a slower, larger picture of the same cloud
CURRENT, REFERENCE, HIGHLIGHT, MUTED = "#1f77b4", "#ff7f0e", "#d62728", "#7f7f7f"
_PLAIN = {"left": 0.12, "right": 0.97, "top": 0.92, "bottom": 0.12}  # room for dollar ticks and one title line


def _figure(width: int = WIDTH, height: int = HEIGHT, *, margins: dict[str, float] | None = None) -> Figure:
    """A blank figure. With `margins` (fractions, as `subplots_adjust` takes them) the axes sit at
    fixed places, which draws about twice as fast as letting the layout engine fit labels of
    unknown width; charts whose labels are names of any length leave it to the engine."""
    from matplotlib.figure import Figure

    if margins is not None:
        figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
        figure.subplots_adjust(**margins)
    else:
        figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    figure.set_facecolor("white")
    return figure


def _png(figure: Figure) -> bytes:
    """The figure as a palette PNG: a chart has few colours, so 64 keep it sharp at a third of the size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.convert("RGB").quantize(colors=64).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown showing the PNG inline; Dagster's UI allows `data:` image sources."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _style(axes: Axes) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(True, color="#e5e5e5", linewidth=0.8)
    axes.set_axisbelow(True)
    axes.tick_params(labelsize=9)


def _money(value: float, decimals: int = 0) -> str:
    return f"{'-' if value < 0 else ''}${abs(value):,.{decimals}f}"


def _text(text: str) -> str:
    """Dollar signs as text: matplotlib reads text between two of them as a formula."""
    return text.replace("$", r"\$")


def _dollars(axes: Axes, which: str = "x", decimals: int = 0) -> None:
    from matplotlib.ticker import FuncFormatter

    formatter = FuncFormatter(lambda value, _: _text(_money(value, decimals)))
    (axes.xaxis if which == "x" else axes.yaxis).set_major_formatter(formatter)


def _log_dollars(axes: Axes, low: float, high: float) -> None:
    """A log x axis labelled $50, $100, $200: ticks at 1, 2 and 5 of each decade (fewer when the
    range spans many decades), in dollars, and no labels on the minor ticks, which matplotlib would
    otherwise write as 4x10^1."""
    from matplotlib.ticker import LogLocator, NullFormatter

    decades = np.log10(max(high, low * 10) / low)
    subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0, 3.0) if decades <= 4 else (1.0,)
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    _dollars(axes)
    axes.xaxis.set_minor_formatter(NullFormatter())


def _legend_above(axes: Axes, top: float, **options: Any) -> Any:
    """The legend in the top left corner, and the y axis raised so the tallest bar (`top`, in data
    units) ends below it: the legend sits in free space whatever the data's shape."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    legend = axes.legend(fontsize=9, frameon=False, loc="upper left", **options)
    renderer = FigureCanvasAgg(axes.figure).get_renderer()
    share = legend.get_window_extent(renderer).height / axes.get_window_extent(renderer).height
    axes.set_ylim(0, max(top, 1e-9) / max(0.3, 1 - share - 0.06))
    return legend


# -- prices -----------------------------------------------------------------------------------


def price_distribution(
    prices: Mapping[str, Sequence[float] | pd.Series],
    *,
    title: str,
    bounds: tuple[float, float] | None = None,
    bins: int = 50,
) -> bytes:
    """`price_distribution_figure` as PNG bytes."""
    return _png(price_distribution_figure(prices, title=title, bounds=bounds, bins=bins))


def price_distribution_figure(
    prices: Mapping[str, Sequence[float] | pd.Series],
    *,
    title: str,
    bounds: tuple[float, float] | None = None,
    bins: int = 50,
) -> Figure:
    """Histograms of nightly prices on a logarithmic price axis, one outline per series.

    On a linear axis a few $10,000 listings squeeze every ordinary price into the first bar; on a
    log axis $30 and $300 are as far apart as $1,000 and $10,000, so both the bulk and the outliers
    show. Prices below $1 (free listings) are counted at $1. `bounds` draws the range cleaning keeps.
    """
    series = {label: np.asarray(pd.Series(values).dropna(), dtype=float) for label, values in prices.items()}
    present = [values for values in series.values() if len(values)]
    figure = _figure(margins=_PLAIN)
    axes = figure.add_subplot()
    _style(axes)
    tallest = 0.0
    if present:
        low = max(1.0, min(float(values.min()) for values in present))
        high = max(low * 10, max(float(values.max()) for values in present))
        edges = np.geomspace(low, high * 1.0001, bins + 1)
        for number, (label, values) in enumerate(series.items()):
            described = f"{label}: {len(values):,} listings, median {_money(float(np.median(values)))}" if len(
                values
            ) else f"{label}: none"
            shown = np.clip(values, low, None)
            tallest = max(tallest, float(np.histogram(shown, bins=edges)[0].max(initial=0)))
            if number == 0:  # the first series filled, the others as outlines on top of it
                axes.hist(shown, bins=edges, color="#c6dbef", edgecolor=CURRENT, linewidth=0.6, label=_text(described))
            else:
                colour = (REFERENCE, HIGHLIGHT)[number % 2 - 1]
                axes.hist(
                    shown, bins=edges, histtype="step", linewidth=1.8, color=colour, label=_text(described)
                )
        axes.set_xscale("log")
        _log_dollars(axes, low, high)
    if bounds is not None:
        for bound in bounds:
            axes.axvline(bound, color=MUTED, linestyle="--", linewidth=1)
        kept = f"kept by cleaning: {_money(bounds[0])} to {_money(bounds[1])}"
        axes.axvspan(*bounds, color=MUTED, alpha=0.08, label=_text(kept))
    axes.set_xlabel("nightly price (log scale)", fontsize=10)
    axes.set_ylabel("listings", fontsize=10)
    axes.set_title(_text(title), fontsize=11)
    if present or bounds is not None:
        _legend_above(axes, tallest)
    return figure


# -- model quality ----------------------------------------------------------------------------


def _sample(count: int, limit: int, seed: int = 0) -> np.ndarray:
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


def predicted_vs_actual(actual: Sequence[float], predicted: Sequence[float], *, title: str) -> bytes:
    """Each listing's predicted price against its real one, with the line where they are equal.

    At most `SCATTER_POINTS` listings are drawn (a fixed random sample, so the picture repeats); the
    MAE in the title is over all of them.
    """
    actual_values = np.asarray(actual, dtype=float)
    predicted_values = np.asarray(predicted, dtype=float)
    figure = _figure(margins=_PLAIN)
    axes = figure.add_subplot()
    _style(axes)
    picked = _sample(len(actual_values), SCATTER_POINTS)
    axes.scatter(actual_values[picked], predicted_values[picked], s=6, alpha=0.35, color=CURRENT, linewidths=0)
    if len(actual_values):
        top = float(max(actual_values.max(), predicted_values.max()))
        axes.plot([0, top], [0, top], color=HIGHLIGHT, linewidth=1.2, label="predicted = actual")
        mae = float(np.mean(np.abs(predicted_values - actual_values)))
        drawn = "" if len(picked) == len(actual_values) else f", {len(picked):,} drawn"
        title = f"{title}: MAE {_money(mae, 2)} over {len(actual_values):,} listings{drawn}"
        axes.legend(fontsize=9, frameon=False, loc="upper left")
    axes.set_xlabel("actual nightly price", fontsize=10)
    axes.set_ylabel("predicted nightly price", fontsize=10)
    _dollars(axes, "x")
    _dollars(axes, "y")
    axes.set_title(_text(title), fontsize=11)
    return _png(figure)


def errors_by_group(
    groups: Mapping[str, Sequence[Any] | pd.Series],
    actual: Sequence[float],
    predicted: Sequence[float],
    *,
    title: str,
) -> bytes:
    """`errors_by_group_figure` as PNG bytes."""
    return _png(errors_by_group_figure(groups, actual, predicted, title=title))


WHISKER_NOTE = "box: middle half, line: median, whiskers: 5th-95th percentiles, dots: listings beyond them"


def errors_by_group_figure(
    groups: Mapping[str, Sequence[Any] | pd.Series],
    actual: Sequence[float],
    predicted: Sequence[float],
    *,
    title: str,
) -> Figure:
    """Residuals (predicted minus actual) per borough, per room type...: one panel per grouping.

    Boxes span the middle half of the residuals with the median marked, whiskers the 5th to 95th
    percentiles, and every listing beyond them is a dot, so the worst errors show; the figure says
    so under the panels (`WHISKER_NOTE`), since matplotlib's default whiskers mean something else.
    Each label carries the group's MAE and size, so a group the model serves badly stands out even
    when it is small.
    """
    actual_values = np.asarray(actual, dtype=float)
    residuals = np.asarray(predicted, dtype=float) - actual_values
    figure = _figure(WIDTH, HEIGHT)
    panels = figure.subplots(1, max(len(groups), 1), squeeze=False)[0]
    for axes, (column, labels) in zip(panels, groups.items()):
        _style(axes)
        keys = pd.Series(np.asarray(labels, dtype=object)).fillna("(missing)").astype(str).to_numpy()
        names = sorted(set(keys))
        data = [residuals[keys == name] for name in names]
        ticks = [
            _text(f"{name}\nMAE {_money(float(np.mean(np.abs(values))))}, n={len(values):,}") if len(values) else name
            for name, values in zip(names, data)
        ]
        axes.boxplot(data, orientation="horizontal", whis=(5, 95), showfliers=True, widths=0.6,
                     medianprops={"color": HIGHLIGHT}, patch_artist=True,
                     boxprops={"facecolor": "#c6dbef", "edgecolor": CURRENT},
                     flierprops={"marker": "o", "markersize": 2.5, "markerfacecolor": MUTED,
                                 "markeredgewidth": 0, "alpha": 0.5})
        axes.set_yticks(range(1, len(names) + 1), ticks, fontsize=8)
        axes.axvline(0, color=MUTED, linewidth=1)
        axes.set_xlabel("predicted - actual", fontsize=9)
        _dollars(axes)
        axes.set_title(column, fontsize=10)
    figure.suptitle(title, fontsize=11)
    figure.supxlabel(WHISKER_NOTE, fontsize=8, color="#555555")
    return figure


def feature_importances(importances: pd.DataFrame, *, unit: str, title: str, top: int = 15) -> bytes:
    """The `top` features as labelled bars, most important on top, with their spread as error bars.

    `importances` has columns feature, importance and spread (same unit as importance); `unit` says
    what an importance is, because it differs between models (a rise in MAE in dollars for one,
    a share of impurity reduction for another).
    """
    shown = importances.head(top).iloc[::-1]
    figure = _figure()
    axes = figure.add_subplot()
    _style(axes)
    spread = shown["spread"].to_numpy(dtype=float) if "spread" in shown.columns else None
    axes.barh(shown["feature"].astype(str), shown["importance"].to_numpy(dtype=float), xerr=spread,
              color=CURRENT, error_kw={"ecolor": MUTED, "capsize": 2, "linewidth": 1})
    axes.tick_params(axis="y", labelsize=8)
    axes.axvline(0, color=MUTED, linewidth=1)
    axes.set_xlabel(unit, fontsize=10)
    hidden = len(importances) - len(shown)
    axes.set_title(title + (f" (top {len(shown)} of {len(importances)})" if hidden > 0 else ""), fontsize=11)
    return _png(figure)


# -- the sweep --------------------------------------------------------------------------------


def leaderboard(
    board: pd.DataFrame,
    parameters: Sequence[str],
    *,
    metric: str = "val_mae",
    top: int = 25,
    trained: int | None = None,
    noise: Mapping[int, float] | None = None,
) -> bytes:
    """`leaderboard_figure` as PNG bytes."""
    return _png(leaderboard_figure(board, parameters, metric=metric, top=top, trained=trained, noise=noise))


def leaderboard_figure(
    board: pd.DataFrame,
    parameters: Sequence[str],
    *,
    metric: str = "val_mae",
    top: int = 25,
    trained: int | None = None,
    noise: Mapping[int, float] | None = None,
) -> Figure:
    """Each trial's validation MAE as a dot, best at the top in red, the trained configuration (trial
    number `trained`) as a blue diamond, and with `noise` (trial -> dollars) a bar that wide either
    side of each dot and a line at the best score: a trial whose bar reaches the line is within the
    noise of the best (`rental_pipeline.sweep_report` gives twice the standard error of each trial's
    paired difference from the best, so trials a dollar apart can be judged against it).

    Dots rather than bars: bars start at zero, which hides differences of a few cents between
    trials that all score about $30. Labels are the values alone (the axis names the parameters
    once), so they take little of the width; the trained configuration is drawn even when it is
    not among the `top`.
    """
    from matplotlib.lines import Line2D

    ranked = board.sort_values([metric, "trial"]).head(top)
    if trained is not None and trained not in set(ranked["trial"]):
        ranked = pd.concat([ranked, board[board["trial"] == trained]])
    ranked = ranked.iloc[::-1]
    trials = [int(t) for t in ranked["trial"]]
    labels = [
        " · ".join(_short(row[name]) for name in parameters) or f"trial {trial}"
        for trial, (_, row) in zip(trials, ranked.iterrows())
    ]
    values = ranked[metric].to_numpy(dtype=float)
    figure = _figure(WIDTH, max(HEIGHT, 140 + 16 * len(ranked)))
    axes = figure.add_subplot()
    _style(axes)
    positions = np.arange(len(values))
    handles = []
    if noise and len(values):
        errors = [float(noise.get(trial, 0.0)) for trial in trials]
        axes.errorbar(values, positions, xerr=errors, fmt="none", ecolor="#c0c0c0", elinewidth=2, zorder=2)
        axes.axvline(values[-1], color=HIGHLIGHT, linewidth=0.8, linestyle=":", zorder=1)
        handles.append(Line2D([], [], color="#c0c0c0", linewidth=2, label="noise of its gap to the best"))
    colours = [MUTED] * len(values)
    if len(values):
        colours[-1] = HIGHLIGHT
        handles.insert(0, Line2D([], [], marker="o", linestyle="", color=HIGHLIGHT, label="best"))
    axes.scatter(values, positions, color=colours, s=36, zorder=3)
    if trained in trials:
        at = trials.index(trained)
        axes.scatter([values[at]], [at], marker="D", s=70, facecolor="none", edgecolor=CURRENT, linewidth=2,
                     zorder=4)
        labels[at] += "  (trained)"
        handles.append(Line2D([], [], marker="D", linestyle="", markerfacecolor="none", markeredgecolor=CURRENT,
                              markeredgewidth=2, label="trained configuration"))
    axes.set_yticks(positions, labels, fontsize=8)
    axes.set_ylabel(" · ".join(name.split(".")[-1] for name in parameters) or "trial", fontsize=9)
    axes.set_xlabel("validation MAE (lower is better)", fontsize=10)
    _dollars(axes, decimals=2)
    if handles:  # above the axes, under the title: never over a dot
        axes.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=len(handles), fontsize=8,
                    frameon=False, borderaxespad=0.2)
    best = f"best {_money(float(values[-1]), 2)}" if len(values) else "no trials"
    hidden = len(board) - len(ranked)
    figure.suptitle(_text(f"Sweep: {len(board)} trials, {best}" + (f" ({len(ranked)} shown)" if hidden > 0 else "")),
                    fontsize=11)
    return figure


def _short(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


# -- drift ------------------------------------------------------------------------------------


def share_comparison(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    title: str,
    xlabel: str,
) -> bytes:
    """`share_comparison_figure` as PNG bytes."""
    return _png(share_comparison_figure(labels, reference, current, title=title, xlabel=xlabel))


def share_comparison_figure(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    title: str,
    xlabel: str,
) -> Figure:
    """Share of listings per category or bin in the reference version and in the checked one,
    side by side, in the order given (bins stay in value order)."""
    positions = np.arange(len(labels))
    figure = _figure(margins={**_PLAIN, "bottom": 0.24})
    axes = figure.add_subplot()
    _style(axes)
    width = 0.4
    axes.bar(positions - width / 2, np.asarray(reference, dtype=float), width, color=REFERENCE, label="reference")
    axes.bar(positions + width / 2, np.asarray(current, dtype=float), width, color=CURRENT, label="this version")
    long_labels = max((len(str(label)) for label in labels), default=0) > 8 or len(labels) > 6
    axes.set_xticks(positions, [_text(str(label)) for label in labels], fontsize=8,
                    rotation=30 if long_labels else 0, ha="right" if long_labels else "center")
    from matplotlib.ticker import PercentFormatter

    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel(xlabel, fontsize=10)
    axes.set_ylabel("share of listings", fontsize=10)
    axes.set_title(_text(title), fontsize=11)
    shares = np.concatenate([np.asarray(reference, dtype=float), np.asarray(current, dtype=float), [0.0]])
    _legend_above(axes, float(np.nanmax(shares)), ncols=2)
    return figure
