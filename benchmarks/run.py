"""The benchmark runner behind `make bench` and `python -m benchmarks`.

Every measured command is a real subprocess (the `dagster` and `rental-pipeline` command lines,
the plain floor script, a fresh interpreter) started in a fresh temporary state folder
(benchmarks/harness.py). Comparisons are interleaved (A B A B ...) in one invocation and
reported as medians, so a machine that gets busier half-way through shifts both sides alike.
The sections are registered in benchmarks/sections/__init__.py, one module each.

    python -m benchmarks                 # full sizes (about 15 minutes on 2 cores)
    python -m benchmarks --quick         # small sizes, every section (about 3 minutes)
    python -m benchmarks --only fixed,startup --json out.json
    python -m benchmarks --from-json benchmarks/results/latest.json --update-readme

Prints a markdown table and writes the raw figures as JSON (default
`benchmarks/results/latest.json`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks.harness import (
    DEFAULT_JSON,
    MODES,
    Bench,
    Report,
    Sizes,
    code_state,
    compile_package,
    load_average,
    log,
    machine,
    markdown_table,
    update_readme,
)
from benchmarks.measure import CommandFailed
from benchmarks.sections import NAMES, SECTIONS, to_run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="mode", help="much smaller sizes")
    size.add_argument("--mode", choices=sorted(MODES), help="full (default), quick or smoke")
    parser.set_defaults(mode="full")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where the raw figures go")
    parser.add_argument("--only", default=",".join(NAMES),
                        help=f"comma-separated sections to run, of: {', '.join(NAMES)}")
    parser.add_argument("--repeats", type=int, help="override the mode's repetitions")
    parser.add_argument("--update-readme", action="store_true",
                        help="rewrite the Benchmarks section of docs/benchmarks.md")
    parser.add_argument("--from-json", type=Path, help="measure nothing: print (and --update-readme) from this JSON")
    parser.add_argument("--scratch", type=Path, help="parent of the temporary folders (default: the system's)")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(NAMES)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(NAMES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        report = Report.from_dict(json.loads(args.from_json.read_text(encoding="utf-8")))
    else:
        report = measure(args)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    print(markdown_table(report.rows))
    if args.update_readme:
        update_readme(report)
        log("updated the Benchmarks section of docs/benchmarks.md")
    return 1 if report.meta.get("errors") else 0


def measure(args: argparse.Namespace) -> Report:
    sizes = MODES[args.mode]
    if args.repeats:
        sizes = Sizes(**{**sizes.__dict__, "repeats": args.repeats})
    started = time.perf_counter()
    report = Report(meta={
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": sizes.name,
        "sizes": sizes.__dict__,
        "sections": args.sections,
        "machine": machine(),
        "code": code_state(),
        "load_average": {"start": load_average()},
        "errors": [],
    })
    scratch = Path(tempfile.mkdtemp(prefix="rental-bench-", dir=args.scratch))
    compile_package()
    bench = Bench(sizes, scratch, report, set(args.sections))
    try:
        for section in to_run(set(args.sections)):
            assert section.run is not None
            try:
                section.run(bench)
            except Exception as error:  # noqa: BLE001 - one broken section must not hide the others
                detail = str(error) if isinstance(error, CommandFailed) else traceback.format_exc()
                log(f"{section.name} failed: {detail}")
                report.meta["errors"].append({"section": section.name, "error": detail[-4000:]})
                if isinstance(error, CommandFailed):  # no machine paths in the table: the command's name only
                    failed = error.measurement
                    short = f"`{Path(failed.argv[0]).name} {' '.join(failed.argv[1:3])}` exited {failed.returncode}"
                else:
                    short = f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
                report.add(section.label, "section failed", "error", met=False, note=short)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.meta["seconds"] = time.perf_counter() - started
    report.meta["load_average"]["end"] = load_average()
    order = {section.label: i for i, section in enumerate(SECTIONS)}
    report.rows.sort(key=lambda row: order.get(row.section, len(order)))
    return report
