"""`rental-pipeline backfill`: several weeks in one command (`rental_pipeline.backfill`).

Imports Dagster only when the command runs, so `rental-pipeline --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("backfill")
@click.option("--from", "first", required=True, help="First week, the date of its Monday (e.g. 2024-03-04).")
@click.option("--to", "last", required=True, help="Last week, included; at the latest the week under way.")
@click.option(
    "--job",
    default="weekly_job",
    show_default=True,
    help="weekly_job (the weeks' drops and checks) or weekly_training_job (each week also trains).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Run config (YAML) for every week, e.g. ops.weekly_raw_data.config.rows.",
)
def backfill_command(first: str, last: str, job: str, config_file: Path | None) -> None:
    """Materialize every week from --from to --to: one Dagster run per week, in one process.

    Weeks already done are answered by the run cache; a week that fails its checks fails alone
    and the others go on. Reads and writes the Dagster instance in $DAGSTER_HOME.
    """
    import dagster as dg
    import yaml

    from rental_pipeline.backfill import backfill, week_range

    try:
        weeks = week_range(first, last)
    except ValueError as error:  # one line, before any run: a week that does not exist, a Tuesday...
        raise click.ClickException(str(error)) from error
    config = yaml.safe_load(config_file.read_text()) if config_file else {}
    failed = []
    with dg.DagsterInstance.get() as instance:
        for outcome in backfill(job, weeks, config or {}, instance):
            made = f"computed {', '.join(outcome.computed) or 'nothing'}"
            reused = f"; reused {', '.join(outcome.reused)}" if outcome.reused else ""
            checks = f"; failed checks {', '.join(outcome.failed_checks)}" if outcome.failed_checks else ""
            status = "ok" if outcome.success else "FAILED"
            click.echo(f"{outcome.week}  {status:<6}  run {outcome.run_id[:8]}  {made}{reused}{checks}")
            if not outcome.success:
                failed.append(outcome.week)
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(weeks)} weeks failed: {', '.join(failed)}")
