"""Champion/challenger: whether a newly trained model deserves the `prod` alias.

Both models are scored on the same test split in the same run, so the comparison is fair even
when the test split changed since the champion was promoted (its recorded score would not be).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PROD = "prod"


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    challenger: str
    challenger_mae: float
    champion: str | None
    champion_mae: float | None
    min_improvement: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_promotion(
    challenger: str,
    challenger_mae: float,
    champion: str | None,
    champion_mae: float | None,
    *,
    min_improvement: float = 0.0,
) -> PromotionDecision:
    """Promote when there is no champion, or the challenger's test MAE is lower by more than
    `min_improvement` dollars (0: any improvement; negative: accept a slightly worse model)."""
    facts = dict(
        challenger=challenger,
        challenger_mae=challenger_mae,
        champion=champion,
        champion_mae=champion_mae,
        min_improvement=min_improvement,
    )
    if champion is None or champion_mae is None:
        return PromotionDecision(promote=True, reason=f"no {PROD} model yet: {challenger} becomes {PROD}", **facts)
    if champion == challenger:
        return PromotionDecision(promote=False, reason=f"{challenger} is already {PROD}", **facts)
    gain = champion_mae - challenger_mae
    if gain > min_improvement:
        reason = (
            f"{challenger} test MAE {challenger_mae:.3f} beats {PROD} {champion} ({champion_mae:.3f}) "
            f"by {gain:.3f} > {min_improvement:g}"
        )
        return PromotionDecision(promote=True, reason=reason, **facts)
    reason = (
        f"{challenger} test MAE {challenger_mae:.3f} does not beat {PROD} {champion} ({champion_mae:.3f}) "
        f"by more than {min_improvement:g}: {PROD} stays"
    )
    return PromotionDecision(promote=False, reason=reason, **facts)
