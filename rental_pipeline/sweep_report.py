"""What the sweep's page says of its result: which trial is the configuration training uses, how much
better the best trial was, and whether that is more than trial-to-trial noise.

Every trial is scored on the same validation listings, so two trials' MAEs differ by the model
and by nothing else; but those listings are a sample, and a trial can win by a dollar on them and
lose on the next sample. The noise of one trial's MAE is its standard error over the validation
listings (the spread of its absolute errors over the square root of their count); the noise of
the difference between two trials is the standard error of the per-listing difference of their
absolute errors, which is smaller because both err on the same hard listings. A difference is
called beyond the noise when it exceeds twice that standard error (about a 95% interval).

Plain functions on the leaderboard and per-trial errors: nothing here knows Dagster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

NOISE_FACTOR = 2.0  # standard errors a difference must exceed to be more than noise


def _money(value: float) -> str:
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def _same(a: Any, b: Any) -> bool:
    missing = (a is None or (isinstance(a, float) and math.isnan(a)), b is None or (isinstance(b, float) and
                                                                                    math.isnan(b)))
    if any(missing):
        return all(missing)
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)


def trained_trial(board: pd.DataFrame, parameters: Sequence[str], base: Mapping[str, Any]) -> int | None:
    """The trial whose swept values are the training config's (`base`, as run config: nested
    sections such as ``boosting``), i.e. what `inference_pipeline` trains without other config;
    None when the grid does not contain it."""

    def base_value(key: str) -> Any:
        value: Any = base
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value

    wanted = {key: base_value(key) for key in parameters}
    for _, row in board.iterrows():
        if all(_same(row[key].item() if hasattr(row[key], "item") else row[key], wanted[key]) for key in parameters):
            return int(row["trial"])
    return None


@dataclass(frozen=True)
class SweepVerdict:
    best_trial: int
    best_mae: float
    trained_trial: int | None
    trained_mae: float | None
    standard_errors: dict[int, float]  # trial -> standard error of its validation MAE
    gap_errors: dict[int, float]  # trial -> standard error of its paired difference from the best trial
    difference_error: float | None  # standard error of (trained MAE - best MAE) on the same listings

    def noise(self) -> dict[int, float]:
        """Trial -> how far its MAE may be from the best's by chance (`NOISE_FACTOR` standard errors
        of the paired gap), as the leaderboard draws it."""
        return {trial: NOISE_FACTOR * error for trial, error in self.gap_errors.items()}

    @property
    def improvement(self) -> float | None:
        """Dollars of validation MAE the best trial saves over the trained configuration."""
        return None if self.trained_mae is None else self.trained_mae - self.best_mae

    @property
    def beyond_noise(self) -> bool | None:
        if self.improvement is None or self.difference_error is None:
            return None
        return self.improvement > NOISE_FACTOR * self.difference_error

    def text(self) -> str:
        """One paragraph for the page: the gain, the noise, and what follows."""
        if self.trained_trial is None:
            return (f"The training config's values are not a trial of this grid, so the gain of the best trial "
                    f"(trial {self.best_trial}, {_money(self.best_mae)}) over it is unknown.")
        if self.trained_trial == self.best_trial:
            return (f"The trained configuration (trial {self.best_trial}) is the best trial: "
                    "there is nothing better to train.")
        noise = NOISE_FACTOR * (self.difference_error or 0.0)
        verdict = "more than the noise: worth training" if self.beyond_noise else (
            "within the noise: another sample of listings could rank them the other way")
        return (f"Best trial {self.best_trial} scores {_money(self.improvement or 0.0)} lower validation MAE than "
                f"the trained configuration (trial {self.trained_trial}, {_money(self.trained_mae or 0.0)}); "
                f"trial-to-trial noise on these listings is ±{_money(noise)} ({NOISE_FACTOR:g} standard errors of "
                f"the paired difference), so the gain is {verdict}.")


def judge(board: pd.DataFrame, errors: Mapping[int, pd.Series], trained: int | None,
          metric: str = "val_mae") -> SweepVerdict:
    """The verdict on a leaderboard, from each trial's absolute validation errors (indexed by
    listing id; trials without them get no standard error)."""
    ranked = board.sort_values([metric, "trial"])
    best = int(ranked["trial"].iloc[0])
    maes = dict(zip(board["trial"].astype(int), board[metric].astype(float)))
    standard_errors = {
        trial: float(values.std(ddof=1) / math.sqrt(len(values)))
        for trial, values in errors.items() if len(values) > 1
    }
    gaps = {}
    for trial, values in errors.items():
        paired = (values - errors[best]).dropna() if best in errors and trial != best else pd.Series(dtype=float)
        if len(paired) > 1:
            gaps[trial] = float(paired.std(ddof=1) / math.sqrt(len(paired)))
    return SweepVerdict(best, maes[best], trained, maes.get(trained) if trained is not None else None,
                        standard_errors, gaps, gaps.get(trained) if trained is not None else None)


def absolute_errors(validation: pd.DataFrame | None) -> pd.Series | None:
    """|predicted - price| of each validation listing, by id (a trial's `TrainingResult.validation`)."""
    if validation is None or not {"id", "price", "predicted"} <= set(validation.columns):
        return None
    return (validation["predicted"] - validation["price"]).abs().set_axis(validation["id"].to_numpy())
