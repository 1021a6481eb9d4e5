"""The benchmark's sections, registered here and nowhere else: what `--only` accepts, the order
they run in, and the label of their rows in the table.

Each section is a module with a `run(bench)` that adds its rows to `bench.report` and its raw
figures to `bench.report.results`. A section without `run` is measured by the section it names
as `within`, in that section's workspaces (the incremental re-runs reuse each full run of the
overhead comparison as their baseline), and asking for it runs that section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.harness import Bench
from benchmarks.sections import default_model, fixed, incremental, model, overhead, predict, s3, scale, startup, weeks


@dataclass(frozen=True)
class Section:
    name: str  # as `--only` names it
    label: str  # the table's first column: the section's number and title
    run: Callable[[Bench], None] | None = None
    within: str | None = None  # measured by this other section's runs


SECTIONS: tuple[Section, ...] = (
    Section("overhead", overhead.LABEL, overhead.run),
    Section(incremental.NAME, incremental.LABEL, within="overhead"),
    Section("scale", scale.LABEL, scale.run),
    Section("model", model.LABEL, model.run),
    Section("default_model", default_model.LABEL, default_model.run),
    Section("predict", predict.LABEL, predict.run),
    Section("startup", startup.LABEL, startup.run),
    Section("s3", s3.LABEL, s3.run),
    Section("fixed", fixed.LABEL, fixed.run),
    Section("weeks", weeks.LABEL, weeks.run),
)
NAMES = tuple(section.name for section in SECTIONS)


def to_run(selected: set[str]) -> list[Section]:
    """The sections that measure something for ``selected``, in the registry's order."""
    wanted = set(selected) | {s.within for s in SECTIONS if s.name in selected and s.within}
    return [s for s in SECTIONS if s.run is not None and s.name in wanted]
