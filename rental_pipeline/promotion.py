"""Champion/challenger: whether a newly trained model deserves the `prod` alias, and moving it.

Both models are scored on the same test split in the same run, so the comparison is fair even
when the test split changed since the champion was promoted (its recorded score would not be).
Plain functions over the artifact store: `model_evaluation` only hands them the run's versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rental_pipeline.store import AliasRefusedError

if TYPE_CHECKING:
    import pandas as pd

    from rental_pipeline.store import ArtifactStore
    from rental_pipeline.versions import VersionResolver

PROD = "prod"
MODEL = "inference_pipeline"
PROMOTION_FLAG = "promotion"


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


@dataclass(frozen=True)
class Promotion:
    """What the gate decided for one evaluated model and what became of it."""

    decision: PromotionDecision
    promoted: bool  # `prod` now names the challenger
    outcome: str  # the decision's reason, and why it was not applied if it was not

    def metadata(self) -> dict[str, Any]:
        """The facts shown with the evaluation: which model is prod now, and against what it won or lost."""
        decision = self.decision
        return {
            "evaluated_model": decision.challenger,
            "prod_model": decision.challenger if self.promoted else (decision.champion or "none"),
            **({"previous_prod_test_mae": decision.champion_mae} if decision.champion_mae is not None else {}),
            "promoted": self.promoted,
            "promotion": self.outcome,
        }


def promote(
    store: ArtifactStore,
    resolver: VersionResolver,
    challenger: str,
    challenger_mae: float,
    test_split: Callable[[], pd.DataFrame],
    *,
    min_improvement: float = 0.0,
    apply: bool = True,
    actor: str = "",
) -> Promotion:
    """Find the run's champion, score it on the same test split, decide, and move `prod` if asked.

    The champion is `prod` as the run resolved it (once per run), and `test_split` is only read
    when there is a different champion to score. A move the store refuses (a version with failed
    checks) is reported, not raised. The decision is a fact about this run, not about the scores:
    it goes to the challenger's `promotion` flag and the alias log, so an unchanged re-run still
    reuses the stored evaluation.
    """
    from rental_pipeline.evaluation import evaluate_pipeline

    champion = resolver.alias(MODEL, PROD)
    champion_mae = None
    if champion is not None and champion != challenger:
        champion_mae = evaluate_pipeline(store.load(champion), test_split()).mae
    elif champion == challenger:
        champion_mae = challenger_mae
    decision = decide_promotion(challenger, challenger_mae, champion, champion_mae, min_improvement=min_improvement)
    promoted = False
    outcome = decision.reason
    if decision.promote and apply:
        try:
            store.set_alias(challenger, PROD, reason=decision.reason, actor=actor)
            resolver.alias_moved(MODEL, PROD, challenger)
            promoted = True
        except AliasRefusedError as refused:
            outcome = f"{decision.reason}; refused by the store: {refused}"
    elif decision.promote:
        outcome = f"{decision.reason} (not applied: promote is off)"
    store.mark(challenger, PROMOTION_FLAG, {**decision.as_dict(), "promoted": promoted, "outcome": outcome})
    return Promotion(decision, promoted, outcome)
