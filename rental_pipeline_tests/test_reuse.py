"""The run cache in front of asset bodies: a body runs only when the step computes, sees only
decoded inputs and the run's settings, and a step that is not `reusable` is left alone."""

from typing import Any

import dagster as dg
import pytest

from rental_pipeline.definitions import default_resources
from rental_pipeline.reuse import reusable
from rental_pipeline.run_cache import CacheHit
from rental_pipeline.settings import Settings

pytestmark = pytest.mark.usefixtures("no_mirror")


def graph(seen: list[tuple[str, Any]]) -> list[dg.AssetsDefinition]:
    """An upstream, a reusable step that records what its body saw, and a plain consumer."""

    @dg.asset
    @reusable
    def numbers(context: dg.AssetExecutionContext) -> dg.Output:
        return dg.Output({"n": 3})

    @dg.asset
    @reusable
    def doubled(context: dg.AssetExecutionContext, numbers: Any, settings: Settings) -> dg.Output:
        seen.append(("doubled", numbers))
        seen.append(("settings", settings))
        return dg.Output({"n": numbers["n"] * 2})

    @dg.asset
    def plain(numbers: Any) -> dict:
        seen.append(("plain", numbers))
        return dict(numbers)

    return [numbers, doubled, plain]


def test_dagster_sees_the_inputs_but_not_the_settings():
    [_, doubled, _] = graph([])
    assert set(doubled.keys_by_input_name) == {"numbers"}


def test_a_body_runs_only_when_computing_and_sees_decoded_inputs_and_the_runs_settings(instance):
    seen: list[tuple[str, Any]] = []
    assets = graph(seen)
    first = dg.materialize(assets, instance=instance, resources=default_resources())
    assert first.success
    assert ("doubled", {"n": 3}) in seen and ("plain", {"n": 3}) in seen
    [settings] = [value for kind, value in seen if kind == "settings"]
    assert isinstance(settings, Settings) and settings.plots is False  # the tests turn charts off

    seen.clear()
    again = dg.materialize(assets, instance=instance, resources=default_resources())
    assert again.success
    # the reusable steps were answered by the run cache; the plain one computed on a decoded value
    assert seen == [("plain", {"n": 3})]
    events = again.get_asset_materialization_events()
    reused = {e.asset_key.to_user_string(): e.materialization.metadata for e in events}
    assert reused["doubled"]["reused_from_run"].value == first.run_id
    skipped = [e.message for e in instance.all_logs(again.run_id) if "Not loading" in (e.message or "")]
    assert skipped and all("numbers:v0" in message for message in skipped)


def test_a_hook_gets_the_hit_and_decodes_an_input_only_when_asked(instance):
    calls: list[str] = []

    def on_hit(reused: dg.Output, numbers: Any) -> dg.Output:
        calls.append("hit")
        assert isinstance(reused.value, CacheHit)
        return dg.Output(reused.value, metadata={"upstream_n": numbers()["n"]})

    @dg.asset
    def numbers() -> dict:
        return {"n": 5}

    @dg.asset
    @reusable(on_hit=on_hit)
    def judged(context: dg.AssetExecutionContext, numbers: Any) -> dg.Output:
        calls.append("body")
        return dg.Output({"n": numbers["n"]}, metadata={"upstream_n": numbers["n"]})

    for _ in range(2):
        result = dg.materialize([numbers, judged], instance=instance, resources=default_resources())
        [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("judged")]
        assert event.materialization.metadata["upstream_n"].value == 5
    assert calls == ["body", "hit"]


def test_a_hook_naming_something_the_body_lacks_or_a_body_returning_a_bare_value_is_refused():
    def cacheable(source: str) -> bool:
        return True

    with pytest.raises(TypeError, match="cacheable hook names \\['source'\\]"):

        @reusable(cacheable=cacheable)
        def body(context: dg.AssetExecutionContext) -> dg.Output: ...

    with pytest.raises(TypeError, match="returns a dg.Output"):

        @reusable
        def bare(context: dg.AssetExecutionContext) -> dict: ...


def test_a_version_made_again_in_another_instance_is_reused_there_from_that_run(monkeypatch):
    """The run that first made a version may be in another Dagster instance (a teammate's, or one
    reset) sharing the store. A run with charts then computes, as the first run's page cannot be
    shown; the run after it reuses that run's version, naming it, instead of computing forever."""
    monkeypatch.setenv("RENTAL_PIPELINE_PLOTS", "on")
    seen: list[tuple[str, Any]] = []
    assets = graph(seen)
    with dg.DagsterInstance.ephemeral() as elsewhere:
        first = dg.materialize(assets, instance=elsewhere, resources=default_resources())
    with dg.DagsterInstance.ephemeral() as here:
        seen.clear()
        remade = dg.materialize(assets, instance=here, resources=default_resources())
        assert ("doubled", {"n": 3}) in seen  # computed: the first run is not in this instance
        seen.clear()
        again = dg.materialize(assets, instance=here, resources=default_resources())
        assert ("doubled", {"n": 3}) not in seen
        reused = {e.asset_key.to_user_string(): e.materialization for e in again.get_asset_materialization_events()}
        assert reused["doubled"].metadata["reused_from_run"].value == remade.run_id != first.run_id
        described = reused["doubled"].metadata["description"].value
        assert described.startswith(f"Reused doubled:v0 from run {remade.run_id[:8]}")
        assert reused["doubled"].tags["rental_pipeline/reused_from_run"] == remade.run_id
