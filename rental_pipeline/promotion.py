"""Champion/challenger: whether a newly trained model deserves the `prod` alias, and moving it.

What must hold for a promotion to be right:

1. Both models are scored on the same listings, in the same run, with today's code (a recorded
   score would come from another test split or another version of the model's code).
2. Those listings are ones *neither* model trained on. Weekly drops overlap heavily (most
   listings stay on the market from one week to the next) and a split with another seed shuffles
   the same listings, so the challenger's test split is, for the champion, largely training data:
   scored there, the champion looks better than it is and the challenger loses unfairly (or a
   re-split model wins over a better one). A model's training listings are the `id`s of the data
   versions recorded as its inputs, so they are known for every stored model, whichever run made it.
3. With too few such listings (`min_unseen_rows`) the comparison is noise: prod stays and the
   decision says so. When the champion's training data cannot be read, prod stays too.
4. A model trained on weeks older than prod's newest week never replaces it: a corrected or late
   drop for a past week retrains on that week's window, and however well it scores, prod would
   go back in time (its newest listings unknown to it). Models of the plain graph name no week
   and are compared by score alone.
5. `prod` moves only if it still names the champion the decision was made against (a
   compare-and-swap): when another run moved it meanwhile, the decision is made again against the
   new prod, and after a few such races the move is refused, saying why.

Plain functions over the artifact store: `model_evaluation` only hands them the run's versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rental_pipeline.store import AliasConflictError, AliasRefusedError, StoreError, parse_ref

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from rental_pipeline.store import ArtifactStore
    from rental_pipeline.versions import VersionResolver

PROD = "prod"
MODEL = "inference_pipeline"
PROMOTION_FLAG = "promotion"
ID = "id"
# Fewer unseen listings than this and one split's noise (about $2 of MAE on 200 listings at
# typical errors) is larger than the gains worth a promotion.
MIN_UNSEEN_ROWS = 200
# How many times a decision is made again when another run moved prod under it.
PROMOTION_ATTEMPTS = 3


@dataclass(frozen=True)
class HeadToHead:
    """Champion and challenger scored on the test listings neither of them trained on."""

    test_rows: int  # listings in the challenger's test split
    champion_trained_on: int  # of those, listings in the champion's training data
    challenger_trained_on: int  # of those, listings in the challenger's own training data
    rows: int  # listings neither trained on: the ones both are judged on
    challenger_mae: float | None  # on those rows (None when there are none)
    champion_mae: float | None


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    challenger: str
    challenger_mae: float  # on the whole test split: the evaluation's figure
    champion: str | None
    min_improvement: float
    min_unseen_rows: int
    reason: str
    head_to_head: HeadToHead | None = None
    challenger_week: str | None = None  # the newest week each trained on (`newest_week`)
    champion_week: str | None = None

    @property
    def older_than_prod(self) -> bool:
        """Whether the challenger trained on an older week than prod: never promoted (rule 4)."""
        return bool(self.challenger_week and self.champion_week and self.challenger_week < self.champion_week)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_promotion(
    challenger: str,
    challenger_mae: float,
    champion: str | None,
    head_to_head: HeadToHead | None,
    *,
    min_improvement: float = 0.0,
    min_unseen_rows: int = MIN_UNSEEN_ROWS,
    unknown_training: str | None = None,
    challenger_week: str | None = None,
    champion_week: str | None = None,
) -> PromotionDecision:
    """Promote when there is no champion, or when, on at least `min_unseen_rows` test listings
    neither model trained on, the challenger's MAE is lower by more than `min_improvement`
    dollars (0: any improvement; negative: accept a slightly worse model); never when the
    challenger's newest week (`newest_week`) is older than the champion's."""
    facts = dict(
        challenger=challenger,
        challenger_mae=challenger_mae,
        champion=champion,
        min_improvement=min_improvement,
        min_unseen_rows=min_unseen_rows,
        head_to_head=head_to_head,
        challenger_week=challenger_week,
        champion_week=champion_week,
    )
    if champion is None:
        return PromotionDecision(promote=True, reason=f"no {PROD} model yet: {challenger} becomes {PROD}", **facts)
    if champion == challenger:
        return PromotionDecision(promote=False, reason=f"{challenger} is already {PROD}", **facts)
    if challenger_week and champion_week and challenger_week < champion_week:
        reason = (
            f"{challenger} trained on weeks up to {challenger_week}, older than {PROD} {champion}'s {champion_week}: "
            f"a model of a past week does not take {PROD} back in time, whatever it scores ({PROD} stays; train "
            f"on the newest week, whose window takes in the corrected one)"
        )
        return PromotionDecision(promote=False, reason=reason, **facts)
    if head_to_head is None:
        reason = (
            f"cannot tell which test listings {unknown_training or champion} trained on (its training data is "
            f"not readable in this store), so {challenger} cannot be compared with {PROD} {champion} fairly: "
            f"{PROD} stays"
        )
        return PromotionDecision(promote=False, reason=reason, **facts)
    h = head_to_head
    overlap = (
        f"{PROD} trained on {h.champion_trained_on:,} of the {h.test_rows:,} test listings; "
        f"{h.rows:,} were unseen by both"
    )
    if h.rows < min_unseen_rows or h.challenger_mae is None or h.champion_mae is None:
        reason = (
            f"{overlap}, fewer than min_unseen_rows ({min_unseen_rows:,}), too few to compare {challenger} with "
            f"{PROD} {champion} fairly: {PROD} stays (evaluate on listings {PROD} has not seen, or lower "
            "min_unseen_rows on purpose)"
        )
        return PromotionDecision(promote=False, reason=reason, **facts)
    gain = h.champion_mae - h.challenger_mae
    scores = f"{challenger} MAE {h.challenger_mae:.3f} vs {PROD} {champion} {h.champion_mae:.3f} ({overlap})"
    if gain > min_improvement:
        return PromotionDecision(promote=True, reason=f"{scores}: better by {gain:.3f} > {min_improvement:g}", **facts)
    reason = f"{scores}: not better by more than {min_improvement:g}, {PROD} stays"
    return PromotionDecision(promote=False, reason=reason, **facts)


def newest_week_version(store: ArtifactStore, model: str) -> str | None:
    """The newest week version a stored model trained on: of the data versions its lineage names
    through its training split, the `clean_sample.<week>:vN` of the latest week; None for a model
    of the plain graph, or one whose lineage cannot be read."""
    from rental_pipeline.weeks import split_name

    try:
        refs = [ref for split in store.get(model).inputs for ref in store.get(split).inputs]
        weeks = {split_name(parse_ref(ref).name)[1]: ref for ref in refs}
    except (StoreError, ValueError):
        return None
    weeks.pop(None, None)
    return weeks[max(weeks)] if weeks else None


def newest_week(store: ArtifactStore, model: str) -> str | None:
    """The newest week a stored model trained on (`newest_week_version`), or None."""
    from rental_pipeline.weeks import split_name

    ref = newest_week_version(store, model)
    return split_name(parse_ref(ref).name)[1] if ref else None


def training_listings(store: ArtifactStore, model: str, load: Callable[[str], Any]) -> frozenset | None:
    """The listing ids a stored model trained on: every `id` of the data versions recorded as
    its inputs. None when a model records no such input or one is no longer readable."""
    ids: set = set()
    found = False
    try:
        for ref in store.get(model).inputs:
            value = load(ref)
            if hasattr(value, "columns") and ID in value.columns:
                ids.update(value[ID].tolist())
                found = True
    except StoreError:
        return None
    return frozenset(ids) if found else None


def head_to_head(
    challenger: Pipeline,
    champion: Pipeline,
    test: pd.DataFrame,
    challenger_ids: frozenset,
    champion_ids: frozenset,
) -> HeadToHead:
    """Score both models on the test listings neither trained on."""
    from rental_pipeline.evaluation import mean_absolute_error_on

    seen_by_champion = test[ID].isin(champion_ids)
    seen_by_challenger = test[ID].isin(challenger_ids)
    unseen = test[~seen_by_champion & ~seen_by_challenger]
    scores = (
        (mean_absolute_error_on(challenger, unseen), mean_absolute_error_on(champion, unseen))
        if len(unseen)
        else (None, None)
    )
    return HeadToHead(
        test_rows=len(test),
        champion_trained_on=int(seen_by_champion.sum()),
        challenger_trained_on=int(seen_by_challenger.sum()),
        rows=len(unseen),
        challenger_mae=scores[0],
        champion_mae=scores[1],
    )


# The metadata keys of a comparison with prod: shown only by the run that made it.
COMPARISON_KEYS = (
    "compared_with",
    "compared_rows",
    "prod_trained_on_test_rows",
    "evaluated_mae_on_compared",
    "prod_mae_on_compared",
    "champion_vs_challenger",
)


@dataclass(frozen=True)
class Promotion:
    """What the gate decided for one evaluated model and what became of it."""

    decision: PromotionDecision
    promoted: bool  # `prod` now names the challenger
    outcome: str  # the decision's reason, and why it was not applied if it was not
    # The version holding prod in the store once the decision was made ("none": none does; "":
    # not read, so as the decision implies). Another run may have moved it while this one decided.
    holder: str = ""

    def metadata(self) -> dict[str, Any]:
        """The facts shown with the evaluation: which model is prod now, and what the decision was
        judged on (the listings both were scored on and both scores)."""
        decision = self.decision
        facts: dict[str, Any] = {
            "evaluated_model": decision.challenger,
            "prod_model": self.holder or (decision.challenger if self.promoted else (decision.champion or "none")),
            "promoted": self.promoted,
            "promotion": self.outcome,
        }
        h = decision.head_to_head
        if h is not None and decision.champion != decision.challenger:
            facts.update(
                {
                    "compared_with": decision.champion,
                    "compared_rows": h.rows,
                    "prod_trained_on_test_rows": h.champion_trained_on,
                    **({"evaluated_mae_on_compared": h.challenger_mae} if h.challenger_mae is not None else {}),
                    **({"prod_mae_on_compared": h.champion_mae} if h.champion_mae is not None else {}),
                }
            )
        return facts


def promote(
    store: ArtifactStore,
    resolver: VersionResolver,
    challenger: str,
    challenger_mae: float,
    test_split: Callable[[], pd.DataFrame],
    *,
    load: Callable[[str], Any] | None = None,
    min_improvement: float = 0.0,
    min_unseen_rows: int = MIN_UNSEEN_ROWS,
    apply: bool = True,
    actor: str = "",
) -> Promotion:
    """Find the run's champion, score both models on the test listings neither trained on,
    decide, and move `prod` if asked and if it still names that champion.

    The champion is `prod` as the run resolved it (once per run); `test_split` and the stored
    models and training data (through `load`, the run's decoded values) are only read when there
    is a different champion. A move the store refuses (a version with failed checks) is reported,
    not raised. The decision is a fact about this run, not about the scores: it goes to the
    challenger's `promotion` flag and the alias log, so an unchanged re-run still reuses the
    stored evaluation.
    """
    load = load or store.load
    champion = resolver.alias(MODEL, PROD)
    outcome = ""
    for attempt in range(PROMOTION_ATTEMPTS):
        decision = _decide(
            store, challenger, challenger_mae, champion, test_split, load, min_improvement, min_unseen_rows
        )
        promoted = False
        outcome = decision.reason
        if not decision.promote:
            break
        if not apply:
            outcome = f"{decision.reason} (not applied: promote is off)"
            break
        expected = parse_ref(champion).version if champion is not None else None
        try:
            store.set_alias(challenger, PROD, reason=decision.reason, actor=actor, expected=expected)
        except AliasRefusedError as refused:
            outcome = f"{decision.reason}; refused by the store: {refused}"
            break
        except AliasConflictError as moved:
            # Another run moved prod since this one read it: decide again against the new prod.
            now = f"{MODEL}:v{moved.current}" if moved.current is not None else None
            outcome = (
                f"{decision.reason}; not applied: {PROD} moved to {now or 'nothing'} while this run decided "
                f"against {champion}"
            )
            champion = now
            if champion is not None:
                resolver.alias_moved(MODEL, PROD, champion)
            if attempt + 1 < PROMOTION_ATTEMPTS:
                continue
            outcome += f", {PROMOTION_ATTEMPTS} times: {PROD} stays; evaluate again"
            break
        resolver.alias_moved(MODEL, PROD, challenger)
        promoted = True
        break
    # What holds prod now, read from the store: a run that kept prod decided against the prod it
    # read, and another run may have moved it since (its move needed no conflict with this one).
    current = store.aliases(MODEL).get(PROD)
    holder = f"{MODEL}:v{current}" if current is not None else "none"
    if holder != (challenger if promoted else (decision.champion or "none")):
        outcome += f"; {PROD} is {holder} now, moved by another writer while this run decided"
    store.mark(challenger, PROMOTION_FLAG, {**decision.as_dict(), "promoted": promoted, "outcome": outcome})
    return Promotion(decision, promoted, outcome, holder)


def _decide(
    store: ArtifactStore,
    challenger: str,
    challenger_mae: float,
    champion: str | None,
    test_split: Callable[[], pd.DataFrame],
    load: Callable[[str], Any],
    min_improvement: float,
    min_unseen_rows: int,
) -> PromotionDecision:
    match, unknown, weeks = None, None, {}
    if champion is not None and champion != challenger:
        # Scored even when the weeks decide (an older week never wins): the page shows both scores.
        weeks = {"challenger_week": newest_week(store, challenger), "champion_week": newest_week(store, champion)}
        # Loaded first: a prod model that cannot be loaded safely (a crafted file) must stop the
        # run with the store's refusal, not pass for one whose training data is merely unknown.
        champion_model = load(champion)
        champion_ids = training_listings(store, champion, load)
        challenger_ids = training_listings(store, challenger, load)
        if champion_ids is None or challenger_ids is None:
            unknown = champion if champion_ids is None else challenger
        else:
            match = head_to_head(load(challenger), champion_model, test_split(), challenger_ids, champion_ids)
    return decide_promotion(
        challenger,
        challenger_mae,
        champion,
        match,
        min_improvement=min_improvement,
        min_unseen_rows=min_unseen_rows,
        unknown_training=unknown,
        **weeks,
    )
