"""Where a `dagster job execute` run's time goes, read from the run's own event log.

Every Dagster event carries a wall-clock timestamp, and the benchmark knows when it started the
process and how long it ran, so a run's wall time splits into parts that add up:

* start-up: process start to the first step (the CLI, loading the code location, the instance,
  the run record and its planned events, resource set-up);
* each step, from its start to its end event, split into loading inputs (the IO manager reading
  and decoding stored versions), storing outputs (encoding, hashing and writing a version, from an
  output's event to its "handled" event) and the rest (the step's own work and its events);
* between steps (the executor moving on), and after the last step: the IO manager's teardown
  (waiting for W&B runs), the run's end events and the interpreter's exit.

Check steps are told apart from asset steps by their ASSET_CHECK_EVALUATION events.

    python -m benchmarks.run_profile     # the newest run of $DAGSTER_HOME's instance, as JSON events
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, astuple, dataclass, field
from typing import Any

RUN_START = "PIPELINE_START"
RUN_END = ("PIPELINE_SUCCESS", "PIPELINE_FAILURE")
STEP_END = ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED")


@dataclass
class StepTime:
    seconds: float = 0.0
    loading: float = 0.0
    storing: float = 0.0
    check: bool = False
    outputs_stored: dict[str, float] = field(default_factory=dict)  # output name -> seconds

    @property
    def own(self) -> float:
        """The step's own work (and its events): what is left after loading and storing."""
        return self.seconds - self.loading - self.storing


@dataclass
class RunProfile:
    total: float
    startup: float  # process start to the first step's start
    to_run_start: float  # process start to the run's start event (part of startup)
    steps: dict[str, StepTime]
    between_steps: float
    after_last_step: float  # last step's end to the run's end event (IO manager teardown)
    exit: float  # the run's end event to the process's exit
    events: int

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["parts"] = self.parts()
        return record

    def parts(self, fit_step: str = "inference_pipeline") -> dict[str, float]:
        """The run's wall time in parts that add up to it (up to rounding)."""
        checks = [s for s in self.steps.values() if s.check]
        assets = {k: s for k, s in self.steps.items() if not s.check}
        fit = assets.get(fit_step)
        return {
            "startup": self.startup,
            "fit": fit.own if fit else 0.0,
            "other_asset_steps": sum(s.own for k, s in assets.items() if k != fit_step),
            "check_steps": sum(s.seconds for s in checks),
            "storing": sum(s.storing for s in assets.values()),
            "loading": sum(s.loading for s in assets.values()),
            "between_steps": self.between_steps,
            "after_last_step": self.after_last_step + self.exit,
        }


@dataclass(frozen=True)
class Event:
    timestamp: float
    kind: str  # Dagster event type value, or "LOG" for a plain log line
    step: str | None
    output: str | None = None


def profile_events(events: Iterable[Event], *, started_at: float, seconds: float) -> RunProfile:
    """Split a run's wall time (``started_at`` epoch seconds, lasting ``seconds``) using its events."""
    ordered = sorted(events, key=lambda e: e.timestamp)
    if not ordered:
        raise ValueError("the run recorded no events")
    end = started_at + seconds
    first_step = next((e.timestamp for e in ordered if e.kind == "STEP_START"), end)
    run_start = next((e.timestamp for e in ordered if e.kind == RUN_START), first_step)
    run_end = next((e.timestamp for e in reversed(ordered) if e.kind in RUN_END), end)
    steps: dict[str, StepTime] = {}
    opened: dict[str, float] = {}
    intervals: list[tuple[float, float]] = []
    previous: dict[str, float] = {}  # step -> timestamp of its previous event
    output_at: dict[tuple[str, str | None], float] = {}
    for event in ordered:
        step = event.step
        if step is None:
            continue
        record = steps.setdefault(step, StepTime())
        if event.kind == "STEP_START":
            opened[step] = event.timestamp
        elif event.kind == "LOADED_INPUT":
            record.loading += event.timestamp - previous.get(step, event.timestamp)
        elif event.kind == "STEP_OUTPUT":
            output_at[(step, event.output)] = event.timestamp
        elif event.kind == "HANDLED_OUTPUT":
            stored = event.timestamp - output_at.get((step, event.output), event.timestamp)
            record.storing += stored
            record.outputs_stored[str(event.output)] = stored
        elif event.kind == "ASSET_CHECK_EVALUATION":
            record.check = True
        elif event.kind in STEP_END and step in opened:
            intervals.append((opened[step], event.timestamp))
            record.seconds = event.timestamp - opened.pop(step)
        previous[step] = event.timestamp
    intervals.sort()
    between = sum(max(0.0, start - intervals[i][1]) for i, (start, _) in enumerate(intervals[1:]))
    last_step_end = max((e.timestamp for e in ordered if e.kind in STEP_END), default=first_step)
    return RunProfile(
        total=seconds,
        startup=first_step - started_at,
        to_run_start=run_start - started_at,
        steps=steps,
        between_steps=between,
        after_last_step=max(0.0, run_end - last_step_end),
        exit=max(0.0, end - run_end),
        events=len(ordered),
    )


def events_of(entries: Iterable[Any]) -> list[Event]:
    """A run's event log entries (``instance.all_logs(run_id)``) as the events a profile reads."""
    events = []
    for entry in entries:
        dagster_event = entry.dagster_event
        output = None
        if dagster_event is not None and dagster_event.event_type_value in ("STEP_OUTPUT", "HANDLED_OUTPUT"):
            data = dagster_event.event_specific_data
            handle = getattr(data, "step_output_handle", None)
            output = getattr(handle, "output_name", None) or getattr(data, "output_name", None)
        events.append(
            Event(
                timestamp=entry.timestamp,
                kind=dagster_event.event_type_value if dagster_event is not None else "LOG",
                step=entry.step_key,
                output=output,
            )
        )
    return events


def read_run_events(run_id: str | None = None) -> tuple[str, list[Event]]:
    """The events of one run (default: the newest) of the instance at ``$DAGSTER_HOME``."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        if run_id is None:
            runs = instance.get_runs(limit=1)
            if not runs:
                raise ValueError("no run recorded in $DAGSTER_HOME")
            run_id = runs[0].run_id
        return run_id, events_of(instance.all_logs(run_id))


def events_from_json(text: str) -> list[Event]:
    return [Event(*row) for row in json.loads(text)["events"]]


def main() -> int:
    """Print the newest run's events as JSON (run with the measured run's environment)."""
    run_id, events = read_run_events()
    print(json.dumps({"run_id": run_id, "events": [astuple(e) for e in events]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
