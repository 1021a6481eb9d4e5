"""The run cache applied to asset steps: one decorator between Dagster and each asset body.

A step whose code, config and exact inputs made stored versions before reports those versions
again instead of computing (`rental_pipeline.run_cache` says why that is safe). Deciding it needs
Dagster's view of the step (its selected assets, their code versions, the step's config, the run's
tags) and the run's resolved inputs, so it is done here, once, for every asset: bodies only compute,
and the IO manager only loads and stores. It hands a reusable step its inputs undecoded
(`run_state.Deferred`); they are decoded here just before the body runs, so a step whose outputs
are all cached reads none of them.

Each step's key is computed here whether or not the cache is asked (forced, or a source that may
change under its name), and recorded by the IO manager with the version the step stores, so a later
run can find it. A reused version is handed to the IO manager as the `CacheHit` itself, with the
metadata the run that made it recorded, so the asset page still shows its metrics and tables.

A body (or a hook) that names a ``settings`` argument gets the run's `Settings` there, read as
the run started; Dagster does not see that argument.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg

from rental_pipeline.partitions import asset_store_name
from rental_pipeline.run_cache import CacheHit, cache_key, find_cached
from rental_pipeline.run_state import Deferred, RunState, run_state

# Run tag that makes every selected asset compute even when the run cache holds its version.
FORCE_TAG = "rental_pipeline/force"
# Materialization tag of a version the run cache reused (its value: the run that made it), and the
# metadata entry that leads such a materialization's page, saying so.
REUSED_TAG = "rental_pipeline/reused_from_run"
REUSE_DESCRIPTION_KEY = "description"
_MARK = "rental_pipeline_reusable"
SETTINGS = "settings"

Hook = Callable[..., Any]


def reusable(
    fn: Callable[..., Any] | None = None,
    *,
    cacheable: Hook | None = None,
    extra_inputs: Hook | None = None,
    on_hit: Hook | None = None,
) -> Any:
    """Put the run cache in front of an asset body (under `@dg.asset`/`@dg.multi_asset`). The body
    returns a `dg.Output` (or yields outputs) and types its inputs `Any`: Dagster sees them undecoded.

    Hooks name what they need among the body's arguments (``context``, ``config``, resources; an
    ``on_hit`` hook also its inputs, each as a function that decodes it, and ``reused``):

    * ``cacheable``: whether the cache may answer at all (a file may change under its name);
    * ``extra_inputs``: versions the body reads from the store itself, as asset name -> `name:vN`,
      part of the key like inputs;
    * ``on_hit``: what the step returns for a hit instead of the reused output (``reused``), for a
      step that still decides something every run (the promotion gate).
    """
    if fn is None:
        return functools.partial(reusable, cacheable=cacheable, extra_inputs=extra_inputs, on_hit=on_hit)
    hooks = {"cacheable": cacheable, "extra_inputs": extra_inputs, "on_hit": on_hit}
    signature = inspect.signature(fn)
    if not inspect.isgeneratorfunction(fn) and signature.return_annotation not in (signature.empty, dg.Output):
        # A hit returns a `dg.Output`, which Dagster refuses from a body annotated otherwise.
        raise TypeError(f"{fn.__name__}: a reusable asset body returns a dg.Output (or yields outputs)")
    known = {*signature.parameters, "reused", SETTINGS}
    for kind, hook in hooks.items():
        unknown = set(inspect.signature(hook).parameters) - known if hook else set()
        if unknown:
            raise TypeError(f"{fn.__name__}: {kind} hook names {sorted(unknown)}, which are not arguments of it")
    wants_settings = SETTINGS in signature.parameters

    def arguments(context: dg.AssetExecutionContext, kwargs: dict[str, Any]) -> dict[str, Any]:
        decoded = _decoded(context, kwargs)
        return {**decoded, SETTINGS: run_state(context).settings} if wants_settings else decoded

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def steps(context: dg.AssetExecutionContext, **kwargs: Any) -> Iterator[Any]:
            reused = _reused(context, kwargs, hooks)
            yield from map(_page_ordered, fn(context, **arguments(context, kwargs)) if reused is None else reused)

        wrapper = steps
    else:

        @functools.wraps(fn)
        def step(context: dg.AssetExecutionContext, **kwargs: Any) -> Any:
            reused = _reused(context, kwargs, hooks)
            if reused is None:
                result = fn(context, **arguments(context, kwargs))
                return tuple(map(_page_ordered, result)) if isinstance(result, tuple) else _page_ordered(result)
            ordered = [_page_ordered(output) for output in reused]
            return ordered[0] if len(ordered) == 1 else tuple(ordered)

        wrapper = step
    if wants_settings:  # Dagster would take it for an input
        shown = [parameter for parameter in signature.parameters.values() if parameter.name != SETTINGS]
        wrapper.__signature__ = signature.replace(parameters=shown)
        wrapper.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != SETTINGS}
    setattr(wrapper, _MARK, True)
    return wrapper


def defers_inputs(op_def: dg.OpDefinition) -> bool:
    """Whether a step's inputs may be handed over undecoded: its body is `reusable`."""
    return bool(getattr(getattr(op_def.compute_fn, "decorated_fn", None), _MARK, False))


def _reused(
    context: dg.AssetExecutionContext, kwargs: dict[str, Any], hooks: Mapping[str, Hook | None]
) -> list[dg.Output] | None:
    """The step's outputs from the run cache (or what ``on_hit`` made of them), or None: compute.
    Records the step's keys for the IO manager either way."""
    run = run_state(context)
    available = {
        "context": context,
        SETTINGS: run.settings,
        **{k: v for k, v in kwargs.items() if not isinstance(v, Deferred)},
    }
    extra = _call(hooks["extra_inputs"], available) if hooks["extra_inputs"] else {}
    keys = _cache_keys(context, run, extra)
    step_key = context.op_execution_context.get_step_execution_context().step.key
    run.cache_keys.update({(step_key, name): key for name, key in keys.items()})
    if _forced(context, run) or (hooks["cacheable"] and not _call(hooks["cacheable"], available)):
        return None
    hits = {}
    for name, key in keys.items():
        hit = find_cached(run.store, name, key)
        if hit is None:
            return None
        hits[name] = hit
    if not hits:
        return None
    hits = {name: _shown_from(run, hit) for name, hit in hits.items()}
    if run.settings.plots and any(run.made_by(hit.run_id, hit.version.name) is None for hit in hits.values()):
        # No run that made it is in this instance (another machine's, or deleted): its page,
        # charts and tables cannot be shown again, and a charted run never shows a page without them.
        # This run's own version is then remembered beside the first (`run_cache.remember`).
        context.log.debug("Computing although the run cache holds the outputs: the run that made them is not here")
        return None
    for value in kwargs.values():
        if isinstance(value, Deferred):
            context.log.debug(f"Not loading {value.version.ref} ({value.how}): the run cache holds the outputs")
    outputs = [_reused_output(run, hit, output) for output, hit in _by_output(context, hits)]
    if hooks["on_hit"] is None:
        return outputs
    lazy = {name: functools.partial(run.value, v.version) for name, v in kwargs.items() if isinstance(v, Deferred)}
    return [_call(hooks["on_hit"], {**available, **lazy, "reused": outputs[0]})]


def _cache_keys(context: dg.AssetExecutionContext, run: RunState, extra: Mapping[str, str]) -> dict[str, str]:
    """Asset name -> run-cache key, for every asset the step makes: from the exact versions of
    its inputs (resolved, not loaded), the versions it reads itself, and its config."""
    assets_def = context.assets_def
    # A week of a partitioned asset has a store name of its own (`raw_data.<week>`), so every key
    # names the week it was made for and no week's cache answers for another.
    read = {
        asset_store_name(context, key)
        for name, key in assets_def.keys_by_input_name.items()
        if not assets_def.node_def.input_def_named(name).dagster_type.is_nothing
    }
    inputs = {name: run.input(name).ref for name in read if name is not None}
    inputs.update(extra)
    config = context.op_execution_context.op_config
    config = dict(config) if isinstance(config, dict) else {}
    charts = run.settings.plots
    names = {key: asset_store_name(context, key) for _, key in _selected(context)}
    return {
        name: cache_key(name, assets_def.code_versions_by_key.get(key) or "", config, inputs, charts=charts)
        for key, name in names.items()
    }


def _shown_from(run: RunState, hit: CacheHit) -> CacheHit:
    """The hit naming the run whose page it shows: the first run that made the version if this
    instance has it, else the newest run of this instance that made it again, else the first."""
    for run_id in [hit.run_id, *reversed(hit.runs)]:
        if run_id and run.made_by(run_id, hit.version.name) is not None:
            return dataclasses.replace(hit, run_id=run_id)
    return hit


def _selected(context: dg.AssetExecutionContext) -> list[tuple[str, dg.AssetKey]]:
    """(output name, asset key) of every asset the step makes, in the order the asset declares them."""
    selected = context.selected_asset_keys
    return [(output, key) for output, key in context.assets_def.keys_by_output_name.items() if key in selected]


def _by_output(context: dg.AssetExecutionContext, hits: Mapping[str, CacheHit]) -> list[tuple[str, CacheHit]]:
    return [(output, hits[asset_store_name(context, key)]) for output, key in _selected(context)]


def _forced(context: dg.AssetExecutionContext, run: RunState) -> bool:
    return run.force or str(context.run.tags.get(FORCE_TAG, "")).lower() in ("1", "true", "yes")


def _reused_output(run: RunState, hit: CacheHit, output_name: str) -> dg.Output:
    """The stored version as the step's output, with the metadata the run that made it recorded
    (the manifest's facts when that run is gone from this instance). The materialization says it
    was reused, where a person looks first: a tag, and a description leading its metadata."""
    metadata = run.made_by(hit.run_id, hit.version.name)
    if metadata is None:
        metadata = dict(hit.version.metadata.get("facts") or {})
    made_by = hit.run_id or "unknown"
    description = (
        f"Reused {hit.version.ref} from run {made_by[:8]}: same code, config and inputs, so nothing was "
        "computed; the numbers and pictures below are that run's."
    )
    earlier = {key: value for key, value in metadata.items() if key != REUSE_DESCRIPTION_KEY}
    return dg.Output(
        hit,
        output_name=output_name,
        metadata={REUSE_DESCRIPTION_KEY: description, **earlier},
        tags={REUSED_TAG: made_by},
    )


def _page_ordered(output: Any) -> Any:
    """An output's metadata in the order its page lists it (`assets.metadata.page_order`)."""
    if not isinstance(output, dg.Output):
        return output
    from rental_pipeline.assets.metadata import page_order

    return output.with_metadata(page_order(output.metadata))


def _decoded(context: dg.AssetExecutionContext, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The body's arguments with every deferred input decoded: the step computes."""
    if not any(isinstance(value, Deferred) for value in kwargs.values()):
        return kwargs
    run = run_state(context)
    decoded = {}
    for name, value in kwargs.items():
        if isinstance(value, Deferred):
            # Which version, and why: the run's log says so for every input it reads.
            context.log.debug(f"Loading {value.version.ref} ({value.how})")
            value = run.value(value.version)
        decoded[name] = value
    return decoded


def _call(hook: Hook, available: Mapping[str, Any]) -> Any:
    """``hook`` called with the arguments it names."""
    return hook(**{name: available[name] for name in inspect.signature(hook).parameters})
