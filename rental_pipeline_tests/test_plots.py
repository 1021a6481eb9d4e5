"""The charts as a person reads them: dollar tick labels on log axes, legends off the data, box plots
that say what their whiskers are and show the listings beyond them, a leaderboard that marks the
trained configuration. Each test draws the real matplotlib figure and reads what was rendered."""

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import Polygon, Rectangle

from rental_pipeline import plots
from rental_pipeline.synthetic import generate_listings


def rendered(figure):
    """The figure drawn, as it is before it becomes a PNG; its renderer."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def visible_tick_labels(axes, minor: bool = False) -> list[str]:
    low, high = axes.get_xlim()
    ticks = axes.xaxis.get_minor_ticks() if minor else axes.xaxis.get_major_ticks()
    return [
        tick.label1.get_text() for tick in ticks
        if tick.label1.get_visible() and low <= tick.get_loc() <= high
    ]


@pytest.mark.parametrize("low, high", [(40, 300), (1, 12_000), (8, 900)])
def test_a_log_price_axis_is_labelled_in_plain_dollars(low, high):
    prices = np.geomspace(low, high, 500)
    figure = plots.price_distribution_figure({"predicted_price": prices}, title="prices")
    rendered(figure)
    axes = figure.axes[0]
    labels = [label for label in visible_tick_labels(axes) if label]
    assert len(labels) >= 3, labels
    # "$100", "$1,000": no powers of ten ("4×10¹", "$\\mathdefault{10^{2}}$")
    assert all(re.fullmatch(r"\\?\$[\d,]+", label) for label in labels), labels
    assert not any(visible_tick_labels(axes, minor=True)), visible_tick_labels(axes, minor=True)


def bar_tops(axes, renderer) -> float:
    """The highest top of any bar or histogram outline, in display pixels."""
    tops = [0.0]
    for patch in axes.patches:
        if isinstance(patch, Rectangle) and patch.get_height() > 0 and patch.get_width() < 1e6:
            if patch.get_transform() == axes.transData:  # bars, not a span across the whole height
                tops.append(patch.get_window_extent(renderer).y1)
        elif isinstance(patch, Polygon):  # a histogram drawn as an outline
            points = patch.get_transform().transform(patch.get_xy())
            tops.append(float(points[:, 1].max()))
    return max(tops)


def legend_sits_in_free_space(figure) -> None:
    renderer = rendered(figure)
    axes = figure.axes[0]
    legend = axes.get_legend()
    assert legend is not None
    box, frame = legend.get_window_extent(renderer), axes.get_window_extent(renderer)
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, (box, frame)
    assert box.y0 > bar_tops(axes, renderer), "the legend covers a bar"


def test_the_price_histogram_legend_covers_no_bar():
    raw = generate_listings(rows=3_000, seed=5)["price"]
    clean = raw[(raw >= 10) & (raw <= 350)]
    # a flat distribution: bars as tall at the left edge, under the legend's corner, as anywhere
    flat = pd.Series(np.geomspace(10, 350, 3_000))
    for prices in ({"raw": raw, "clean": clean}, {"flat": flat}):
        figure = plots.price_distribution_figure(prices, title="prices", bounds=(10, 350))
        legend_sits_in_free_space(figure)


def test_the_drift_share_legend_covers_no_bar():
    labels = [f"bin {n}" for n in range(10)]
    figure = plots.share_comparison_figure(labels, [0.3] + [0.7 / 9] * 9, [0.35] + [0.65 / 9] * 9,
                                           title="Price: PSI 0.02", xlabel="price")
    legend_sits_in_free_space(figure)


def test_box_plots_say_their_whiskers_are_percentiles_and_show_the_worst_errors():
    rng = np.random.default_rng(3)
    actual = rng.uniform(50, 300, 2_000)
    predicted = actual + rng.normal(0, 20, len(actual))
    predicted[7] = actual[7] - 258  # the listing the model got most wrong
    boroughs = np.where(np.arange(len(actual)) % 2, "Queens", "Brooklyn")
    figure = plots.errors_by_group_figure({"borough": boroughs}, actual, predicted, title="Test residuals")
    rendered(figure)
    texts = [text.get_text() for text in figure.findobj(lambda artist: hasattr(artist, "get_text"))]
    assert any("whiskers: 5th-95th percentiles" in text for text in texts), texts
    outliers = np.concatenate([line.get_xdata() for line in figure.axes[0].lines if line.get_marker() == "o"])
    assert outliers.min() == pytest.approx(-258)


def test_the_leaderboard_marks_the_trained_configuration_with_short_labels_and_the_noise():
    rng = np.random.default_rng(0)
    grid = itertools.product([0.05, 0.1, 0.15], [15, 31, 63], [0.0, 1.0])
    board = pd.DataFrame(
        {"trial": n, "boosting.learning_rate": lr, "boosting.max_leaf_nodes": leaves,
         "boosting.l2_regularization": l2, "val_mae": 30 + rng.normal(0, 0.6), "val_r2": 0.5}
        for n, (lr, leaves, l2) in enumerate(grid)
    ).sort_values("val_mae")
    parameters = ["boosting.learning_rate", "boosting.max_leaf_nodes", "boosting.l2_regularization"]
    figure = plots.leaderboard_figure(board, parameters, trained=9, noise={n: 0.4 for n in range(18)})
    renderer = rendered(figure)
    axes = figure.axes[0]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels.count("0.1 · 31 · 1  (trained)") == 1  # trial 9 of the grid: the values, not their names
    assert labels[-1] == " · ".join(f"{board.iloc[0][name]:g}" for name in parameters)  # the best on top
    assert "learning_rate" in axes.get_ylabel()
    # the labels leave the chart most of the width
    assert axes.get_window_extent(renderer).width > 0.6 * figure.bbox.width
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["best", "noise of its gap to the best", "trained configuration"]
    assert legend_box_above_axes(axes, renderer)


def legend_box_above_axes(axes, renderer) -> bool:
    return axes.get_legend().get_window_extent(renderer).y0 >= axes.get_window_extent(renderer).y1 - 1
