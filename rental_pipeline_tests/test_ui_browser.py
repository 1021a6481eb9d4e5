"""The web UI end to end: real `dagster dev`, real headless Chromium, clicks a person would make.

Materialize everything from the lineage graph, see every asset materialized and every check
green, open the plots on the asset pages and see them load as images, then re-materialize
`clean_sample` and its downstream from the graph and check in the instance that `raw_data` was
reused, not recomputed, and that the drift checks (which now have a reference) show their plots.
Runs keep the default 20,000 synthetic listings and model; only the hyperparameter sweep is cut
to one trial, through the launchpad.

Skips (saying why) where Chromium or Playwright's Python package is missing. Screenshots land in
`test-artifacts/ui/` under the repository root (ignored by git), so a person can look at what the
test saw.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import dagster as dg
import pytest
import yaml

from rental_pipeline_tests.conftest import PROJECT_ROOT, artifact_store

CHROMIUM = Path(os.environ.get("RENTAL_PIPELINE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "ui"
DAGSTER = Path(sys.executable).parent / "dagster"
START_TIMEOUT = 240
RUN_TIMEOUT = 600


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _default_signals() -> None:
    # A process started in the background inherits SIGINT ignored, and dagster maps SIGTERM to
    # SIGINT's handler, so without this the server would ignore SIGTERM too.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop_process_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the server's whole process group, then SIGKILL whatever is left after `timeout`."""
    group = process.pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def log_tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[str]:
    """`dagster dev` on a free loopback port, state in this test's folders; yields the base URL."""
    home = Path(os.environ["DAGSTER_HOME"])
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")  # what `make dev` does
    port = free_port()
    log = tmp_path / "dagster-dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(DAGSTER), "dev", "-m", "rental_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env={**os.environ, "RENTAL_PIPELINE_PLOTS": "on"},  # the test opens every chart
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"dagster dev exited with {process.returncode}:\n{log_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dagster dev did not answer on {base}/server_info in {START_TIMEOUT} s:\n{log_tail(log)}")
            time.sleep(1)
        yield base
    finally:
        stop_process_group(process)
        if SCREENSHOTS.is_dir():
            shutil.copy(log, SCREENSHOTS / "dagster-dev.log")


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright's Python package is not installed (pip install -e '.[browser]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def new_run_id(instance: dg.DagsterInstance, known: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [run.run_id for run in instance.get_runs() if run.run_id not in known]
        if fresh:
            assert len(fresh) == 1, f"expected one new run, found {fresh}"
            return fresh[0]
        time.sleep(0.5)
    raise AssertionError(f"no run was launched within {timeout} s of the click")


def wait_for_success(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            if run.status != dg.DagsterRunStatus.SUCCESS:
                errors = [
                    event.message or str(event.dagster_event.event_specific_data)
                    for event in instance.all_logs(run_id)
                    if event.dagster_event is not None and event.dagster_event.is_failure
                ]
                raise AssertionError(f"run {run_id} ended {run.status.value}: {errors}")
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish within {RUN_TIMEOUT} s")


def executed(instance: dg.DagsterInstance, run_id: str) -> tuple[set[str], set[str]]:
    """Step keys started and asset names materialized in one run."""
    steps = {
        event.dagster_event.step_key for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    }
    assets = {
        event.dagster_event.asset_key.to_user_string()
        for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    }
    return steps, assets


def assert_checks_green(instance: dg.DagsterInstance, check_keys: set[dg.AssetCheckKey], run_id: str) -> None:
    """Each of these checks was evaluated in `run_id`, and passed."""
    outcome = {}
    for key in check_keys:
        record = instance.get_latest_asset_check_evaluation_record(key)
        outcome[key.to_user_string()] = (
            "never ran" if record is None else "not in this run" if record.run_id != run_id else record.status.value
        )
    assert set(outcome.values()) == {"SUCCEEDED"}, f"asset checks not green: {outcome}"


def open_lineage(page, base: str, selection: str | None = None) -> None:
    """The lineage graph, of the assets `selection` (Dagster's selection syntax) names, or of all."""
    page.goto(f"{base}/asset-groups" + (f"~{quote(selection)}/" if selection else ""), wait_until="networkidle")
    page.get_by_role("button", name="Materialize all").wait_for()
    # Groups start collapsed: the graph settings menu expands them all (the page remembers it).
    settings = page.locator("button:has([aria-label='settings'])").last
    settings.click()
    orientation = page.get_by_role("menuitem", name="Change graph to vertical orientation")
    orientation.wait_for()
    expand = page.get_by_role("menuitem", name="Expand all groups")
    if expand.count():
        expand.click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    if orientation.is_visible():
        settings.click()  # the menu can outlive Escape: its own button closes it
    orientation.wait_for(state="hidden")
    page.get_by_text("clean_sample", exact=True).last.wait_for()


def small_sweep_config(asset_names: set[str]) -> str | None:
    """Launchpad config that keeps a UI run short: the default 20,000 synthetic listings and model,
    but a one-trial hyperparameter sweep (the default grid trains 18 boosted models). None: nothing
    to shrink."""
    if "sweep_leaderboard" not in asset_names:
        return None
    return "ops:\n  sweep_leaderboard:\n    config:\n      grid:\n        boosting.learning_rate: [0.15]\n"


# The group of the weekly partitions, and the selection of everything else.
WEEKS_GROUP = "weeks"
PLAIN_GRAPH = f'not group:"{WEEKS_GROUP}"'

# Plots on the asset pages (metadata key), and on the checks of clean_sample once a reference exists.
ASSET_PLOTS = [
    ("raw_data", "price_distribution_plot"),
    ("clean_sample", "price_distribution_plot"),
    ("inference_pipeline", "validation_predicted_vs_actual_plot"),
    ("inference_pipeline", "validation_errors_by_group_plot"),
    ("inference_pipeline", "feature_importance_plot"),
    ("model_evaluation", "test_predicted_vs_actual_plot"),
    ("model_evaluation", "test_errors_by_group_plot"),
    ("batch_predictions", "predicted_price_plot"),
    ("sweep_leaderboard", "leaderboard_plot"),
]
CHECK_PLOTS = [
    ("borough_drift", "kl_divergence_plot"),
    ("room_type_drift", "psi_plot"),
    ("price_drift", "psi_plot"),
    ("minimum_nights_drift", "psi_plot"),
    ("reviews_per_month_drift", "psi_plot"),
]


def open_plot(page, key: str, screenshot: Path) -> tuple[int, int]:
    """Open the plot in metadata row `key` ("Show Markdown") and wait until its image has loaded;
    returns the image's natural size (0 x 0 for an image the browser could not decode)."""
    row = page.locator("tr", has=page.get_by_text(key, exact=True)).first
    row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    image = dialog.locator("img").first
    image.wait_for()
    page.wait_for_function("image => image.complete", arg=image.element_handle())
    size = image.evaluate("image => [image.naturalWidth, image.naturalHeight]")
    page.screenshot(path=screenshot)
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="hidden")
    return size[0], size[1]


def metadata_row(page, key: str):
    """The row of an asset page's metadata table whose key is `key`."""
    return page.locator("tr", has=page.get_by_text(key, exact=True)).first


def metadata_keys(page) -> list[str]:
    """The keys of the asset page's metadata table, in the order a person reads them."""
    metadata_row(page, "artifact").wait_for()
    # the table whose header row names a Timestamp column; its own rows (table.rows), not those of tables inside it
    return page.evaluate(
        "() => { const table = [...document.querySelectorAll('table')]"
        ".find(t => t.rows.length && /\\bTimestamp\\b/.test(t.rows[0].innerText));"
        " return [...table.rows].slice(1).map(r => r.cells[0].innerText.trim()); }"
    )


def assert_evaluation_page(page, base: str) -> None:
    """model_evaluation leads with the champion-vs-challenger table (prod marked) and the decision;
    numbers, then pictures, then the artifact's facts."""
    page.goto(f"{base}/assets/model_evaluation", wait_until="networkidle")
    keys = metadata_keys(page)
    assert keys[:2] == ["champion_vs_challenger", "promotion"], keys
    assert keys.index("test_mae") < keys.index("test_errors_by_group_plot") < keys.index("artifact"), keys
    table = metadata_row(page, "champion_vs_challenger")
    for text in ("model", "prod now", "★ prod", "inference_pipeline:v0"):
        table.get_by_text(text, exact=False).first.wait_for()
    page.screenshot(path=SCREENSHOTS / "07a-champion-vs-challenger.png")


def assert_check_labels(page, base: str) -> None:
    """A check that only warns is labelled non-blocking; one that stops downstream, blocking."""
    for check, label in (("price_drift", "non-blocking"), ("borough_drift", "blocking")):
        page.goto(f"{base}/assets/clean_sample?view=checks&checkDetail={check}", wait_until="networkidle")
        page.get_by_text("Latest execution", exact=True).wait_for()
        about = page.get_by_text(re.compile(r"This is a (non-)?blocking asset check")).first
        about.wait_for()
        assert about.inner_text().split("This is a ")[1].split(" ")[0] == label, about.inner_text()
        page.screenshot(path=SCREENSHOTS / f"06b-check-label-{check}.png")


def confirm_unmaterialized_upstream(page, then) -> None:
    """Dagster asks "Are you sure?" before `then` shows when an asset in the graph depends on one
    outside it that was never materialized (trainval_data reads the weekly partitions, but only in
    a run that names a week): confirm."""
    asked = page.get_by_text("Are you sure?", exact=True)
    asked.or_(then).first.wait_for()
    if asked.is_visible():
        page.get_by_role("button", name="Confirm").click()


def materialize_all(page, config: str | None, screenshot: Path) -> None:
    """Click "Materialize all"; with config, shift-click it and launch from the launchpad instead."""
    button = page.get_by_role("button", name="Materialize all")
    if config is None:
        button.click()
        return
    button.click(modifiers=["Shift"])
    dialog = page.get_by_role("dialog")
    launchpad = dialog.get_by_text("Launchpad (configure assets)")
    confirm_unmaterialized_upstream(page, launchpad)
    launchpad.wait_for()
    dialog.locator(".CodeMirror").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(config)
    dialog.get_by_text("No errors", exact=True).wait_for()
    page.screenshot(path=screenshot)
    dialog.locator("button").filter(has_text=re.compile(r"^\s*Materialize\s*$")).last.click()


@pytest.mark.slow
def test_materialize_all_then_clean_sample_and_downstream_from_the_ui(browser, dagster_dev):
    from rental_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    # The weekly assets sit beside the graph, a partition a week: a run of them names its week, so the
    # flows below are those of the plain graph, shown without the weeks group.
    plain = {key for key in graph.get_all_asset_keys() if graph.get(key).group_name != WEEKS_GROUP}
    shown = PLAIN_GRAPH if len(plain) < len(graph.get_all_asset_keys()) else None
    asset_names = {key.to_user_string() for key in plain}
    check_keys = {key for key in graph.asset_check_keys if key.asset_key in plain}
    checked_assets = sorted({key.asset_key.to_user_string() for key in check_keys})
    downstream = {
        key.to_user_string() for key in dg.AssetSelection.assets("clean_sample").downstream().resolve(graph)
    } & asset_names
    assert "raw_data" not in downstream and {"clean_sample", "model_evaluation"} <= downstream
    config = small_sweep_config(asset_names)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    base = dagster_dev
    # Wide enough that the fitted graph shows each node's status and checks without zooming.
    page = browser.new_page(viewport={"width": 2560, "height": 1300})
    page.set_default_timeout(60_000)

    with dg.DagsterInstance.get() as instance:
        # 1. The lineage graph, nothing materialized yet: "Materialize all".
        open_lineage(page, base, shown)
        for name in asset_names:
            page.get_by_text(name, exact=True).last.wait_for()
        page.screenshot(path=SCREENSHOTS / "01-lineage-before.png")
        known = {run.run_id for run in instance.get_runs()}
        materialize_all(page, config, SCREENSHOTS / "02-launchpad.png")
        first = new_run_id(instance, known)
        page.wait_for_timeout(500)
        page.screenshot(path=SCREENSHOTS / "03-run-launched.png")
        run = wait_for_success(instance, first)

        steps, materialized = executed(instance, first)
        assert materialized == asset_names
        assert run.asset_selection == {dg.AssetKey(name) for name in asset_names}
        if config is not None:  # the launchpad's config is what the run used
            assert run.run_config["ops"] == yaml.safe_load(config)["ops"]

        # 2. The UI shows every asset materialized, and every asset check green.
        page.goto(f"{base}/assets", wait_until="networkidle")
        page.wait_for_function(
            "n => [...document.querySelectorAll('body *')]"
            ".filter(e => e.children.length === 0 && e.textContent.trim() === 'Materialized').length >= n",
            arg=len(asset_names),
        )
        page.screenshot(path=SCREENSHOTS / "04-catalog-materialized.png")

        open_lineage(page, base, shown)
        page.get_by_text("Materialized", exact=True).first.wait_for()
        for asset in checked_assets:  # each node's "Asset checks" row: "7 / 7 Passed"
            expected = sum(1 for key in check_keys if key.asset_key.to_user_string() == asset)
            page.get_by_text(f"{expected} / {expected} Passed").first.wait_for()
        page.screenshot(path=SCREENSHOTS / "05-lineage-materialized.png")

        if check_keys:
            assert_checks_green(instance, check_keys, first)
            for number, asset in enumerate(checked_assets):
                expected = sum(1 for key in check_keys if key.asset_key.to_user_string() == asset)
                page.goto(f"{base}/assets/{asset}?view=checks", wait_until="networkidle")
                page.get_by_text(f"Checks ({expected})", exact=True).wait_for()
                succeeded = page.get_by_text("Succeeded", exact=True)
                page.wait_for_function(
                    "n => [...document.querySelectorAll('body *')]"
                    ".filter(e => e.children.length === 0 && e.textContent.trim() === 'Succeeded').length >= n",
                    arg=expected,
                )
                assert succeeded.count() == expected
                assert page.get_by_text("Failed", exact=True).count() == 0
                page.screenshot(path=SCREENSHOTS / f"06-checks-{number}-{asset}.png")

        # 3. The plots on each asset page load as images.
        for number, (asset, key) in enumerate(plot for plot in ASSET_PLOTS if plot[0] in asset_names):
            page.goto(f"{base}/assets/{asset}", wait_until="networkidle")
            width, height = open_plot(page, key, SCREENSHOTS / f"07-plot-{number}-{asset}-{key}.png")
            assert width > 0 and height > 0, f"{asset} {key}: the image did not load"

        # 3b. What matters most, at a glance: the evaluation leads with champion against challenger
        #     and the decision; the model that holds prod says so; a warn-only check is not called
        #     blocking; the sweep says what to do next, and that next step is a job the launchpad runs.
        if "model_evaluation" in asset_names:
            assert_evaluation_page(page, base)
            page.goto(f"{base}/assets/inference_pipeline?view=events", wait_until="networkidle")
            page.get_by_text("holds prod", exact=False).first.wait_for()
            page.get_by_text("★ prod: inference_pipeline:v0", exact=False).first.wait_for()
            page.screenshot(path=SCREENSHOTS / "07b-prod-marker.png")
        if "clean_sample" in checked_assets:
            assert_check_labels(page, base)
        if "sweep_leaderboard" in asset_names:
            page.goto(f"{base}/assets/sweep_leaderboard", wait_until="networkidle")
            for key in ("gain_over_trained", "next_step", "leaderboard_plot"):
                metadata_row(page, key).wait_for()
            page.get_by_text("nothing better to train", exact=False).first.wait_for()  # a one-trial grid
            page.goto(
                f"{base}/locations/rental_pipeline.definitions/jobs/train_best_job/playground", wait_until="networkidle"
            )
            page.get_by_text("sweep_leaderboard:latest", exact=False).first.wait_for()
            page.get_by_text("No errors", exact=True).wait_for()
            page.screenshot(path=SCREENSHOTS / "07c-train-best-launchpad.png")

        # 4. clean_sample and everything downstream of it, from the graph's context menu.
        open_lineage(page, base, shown)
        page.get_by_text("clean_sample", exact=True).last.click(button="right")
        page.get_by_role("menuitem", name="Show downstream graph").click()
        page.wait_for_url("**clean_sample**")
        if shown:  # the menu's selection, still without the weeks
            chosen = unquote(page.url.split("/asset-groups~", 1)[1].split("/", 1)[0])
            open_lineage(page, base, f"{chosen} and {shown}")
        page.wait_for_timeout(1000)
        assert page.get_by_text("raw_data", exact=True).count() == 0, "raw_data is still in the filtered graph"
        for name in downstream:
            page.get_by_text(name, exact=True).last.wait_for()
        page.screenshot(path=SCREENSHOTS / "08-downstream-selected.png")
        known = {run.run_id for run in instance.get_runs()}
        materialize_all(page, config, SCREENSHOTS / "09-launchpad-downstream.png")
        second = new_run_id(instance, known)
        run = wait_for_success(instance, second)

        steps, materialized = executed(instance, second)
        assert materialized == downstream
        assert "raw_data" not in steps, f"raw_data was re-executed: steps {sorted(steps)}"
        assert run.asset_selection == {dg.AssetKey(name) for name in downstream}
        raw_history = instance.fetch_materializations(dg.AssetKey("raw_data"), limit=10).records
        assert [record.run_id for record in raw_history] == [first]
        if check_keys:
            downstream_checks = {key for key in check_keys if key.asset_key.to_user_string() in downstream}
            assert_checks_green(instance, downstream_checks, second)

        page.goto(f"{base}/runs/{second}", wait_until="networkidle")
        page.get_by_text("Success", exact=True).first.wait_for()
        page.screenshot(path=SCREENSHOTS / "10-downstream-run.png")

        # The re-run computed nothing: each page it materialized says so first, naming the first run.
        for asset in sorted(downstream & {"clean_sample", "inference_pipeline"}):
            page.goto(f"{base}/assets/{asset}", wait_until="networkidle")
            assert metadata_keys(page)[0] == "description", metadata_keys(page)
            page.get_by_text(f"Reused {asset}:v0 from run {first[:8]}", exact=False).first.wait_for()
            page.screenshot(path=SCREENSHOTS / f"10b-reused-{asset}.png")
        events = instance.fetch_materializations(dg.AssetKey("clean_sample"), limit=1).records
        assert events[0].event_log_entry.asset_materialization.tags["rental_pipeline/reused_from_run"] == first

        # 5. The drift checks compared this version with the reference the first run set: their plots load.
        checks_here = {key.name for key in check_keys if key.asset_key.to_user_string() == "clean_sample"}
        for number, (check, key) in enumerate(plot for plot in CHECK_PLOTS if plot[0] in checks_here):
            page.goto(f"{base}/assets/clean_sample?view=checks&checkDetail={check}", wait_until="networkidle")
            page.get_by_text("Latest execution", exact=True).wait_for()
            width, height = open_plot(page, key, SCREENSHOTS / f"11-check-plot-{number}-{check}.png")
            assert width > 0 and height > 0, f"{check} {key}: the image did not load"

        # 6. A config change of clean_sample alone (stored, as another person's run would): the
        #    graph marks exactly the assets whose upstream data changed, and nothing else.
        from rental_pipeline_tests.conftest import materialize

        changed = materialize(
            instance, {"ops": {"clean_sample": {"config": {"max_price": 300}}}}, selection=["clean_sample"]
        )
        assert changed.success
        open_lineage(page, base, shown)
        page.get_by_text("Unsynced", exact=False).first.wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=SCREENSHOTS / "12-lineage-unsynced.png")
        assert set(page.evaluate(UNSYNCED_NODES, sorted(asset_names))) == {"trainval_data", "test_data"}


# The asset whose graph node carries each "Unsynced" badge: the badge sits in the node's box, so
# the nearest enclosing element that names exactly one asset is that node.
UNSYNCED_NODES = """names => {
  const found = [];
  for (const e of document.querySelectorAll('body *')) {
    if (e.children.length !== 0 || !/^Unsynced/.test(e.textContent.trim())) continue;
    for (let n = e.parentElement; n; n = n.parentElement) {
      const lines = (n.innerText || '').split('\\n').map(s => s.trim());
      const hits = names.filter(name => lines.includes(name));
      if (hits.length === 1) { found.push(hits[0]); break; }
      if (hits.length > 1) break;
    }
  }
  return found;
}"""


# Three small synthetic weeks, the middle one asked to drift so its checks fail.
UI_WEEKS = ["2024-03-04", "2024-03-11", "2024-03-18"]
DRIFTING_WEEK = UI_WEEKS[1]


def backfill_small_weeks(instance: dg.DagsterInstance) -> None:
    """`rental-pipeline backfill` of UI_WEEKS, one week at a time (the drifting week's config differs)."""
    from rental_pipeline.backfill import backfill

    for week in UI_WEEKS:
        config = {
            "ops": {
                "weekly_raw_data": {"config": {"rows": 1_500, "seed": 7, "drift": week == DRIFTING_WEEK}},
                "weekly_clean_sample_checks": {"config": {"min_rows": 100}},
            }
        }
        [outcome] = backfill("weekly_job", [week], config, instance)
        assert bool(outcome.failed_checks) == (week == DRIFTING_WEEK), outcome


@pytest.mark.slow
def test_the_weeks_partition_status_and_the_week_by_week_view_in_the_ui(browser, dagster_dev, monkeypatch, tmp_path):
    """After a backfill of three small weeks (one failing its checks), a person sees on
    weekly_raw_data's page which weeks are materialized and which are missing, and on week_by_week's
    page its table (the failing week's checks named) and its plot; then backfills two more weeks
    with one click."""
    monkeypatch.setenv("RENTAL_PIPELINE_PLOTS", "on")
    monkeypatch.setenv("WANDB_MODE", "disabled")  # the mirror is the W&B tests' business
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = dagster_dev
    with dg.DagsterInstance.get() as instance:
        backfill_small_weeks(instance)
        assert instance.get_materialized_partitions(dg.AssetKey("weekly_raw_data")) == set(UI_WEEKS)

    page = browser.new_page(viewport={"width": 1800, "height": 1200})
    page.set_default_timeout(60_000)

    # weekly_raw_data's partitions: the three weeks materialized, none failed, every other week missing
    # (how many depends on today, so not counted); with the missing ones filtered out, the three weeks.
    page.goto(f"{base}/assets/weekly_raw_data?view=partitions", wait_until="networkidle")
    page.get_by_text("Materialized (3)", exact=True).wait_for()
    page.get_by_text("Failed (0)", exact=True).wait_for()
    missing = page.get_by_text(re.compile(r"^Missing \(\d+\)$"))
    missing.wait_for()
    page.screenshot(path=SCREENSHOTS / "weeks-01-raw-data-partitions.png")
    missing.click()
    for week in UI_WEEKS:
        page.get_by_text(week, exact=True).first.wait_for()
    page.screenshot(path=SCREENSHOTS / "weeks-02-raw-data-materialized-weeks.png")

    # weekly_clean_sample: the week that drifted is materialized too (its checks failed after it was
    # made, so the week by week view names them, below, and nothing downstream ran that week).
    page.goto(f"{base}/assets/weekly_clean_sample?view=partitions", wait_until="networkidle")
    page.get_by_text("Materialized (3)", exact=True).wait_for()
    page.screenshot(path=SCREENSHOTS / "weeks-03-clean-sample-partitions.png")

    # week_by_week: its table of the three weeks, and its plot.
    page.goto(f"{base}/assets/week_by_week", wait_until="networkidle")
    table = metadata_row(page, "week_by_week")
    table.wait_for()
    for week in UI_WEEKS:
        table.get_by_text(week, exact=False).first.wait_for()
    table.get_by_text("borough_drift", exact=False).first.wait_for()  # the bad week's failed checks
    width, height = open_plot(page, "week_by_week_plot", SCREENSHOTS / "weeks-04-week-by-week-plot.png")
    assert width > 100 and height > 100, (width, height)
    page.screenshot(path=SCREENSHOTS / "weeks-05-week-by-week.png")

    # One click backfills more weeks: Materialize… on weekly_raw_data, a range of two weeks, Launch
    # backfill. The daemon of `dagster dev` starts a run per week, each its own week's version.
    more = ["2024-03-25", "2024-04-01"]
    with dg.DagsterInstance.get() as instance:
        known = {run.run_id for run in instance.get_runs()}
    page.goto(f"{base}/assets/weekly_raw_data", wait_until="networkidle")
    page.locator("button").filter(has_text="Materialize").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Show all partitions").click()  # the dialog opens on the last 90 days
    partitions = dialog.locator("input[type=text], input:not([type])").first
    partitions.fill(f"[{more[0]}...{more[1]}]")
    partitions.press("Enter")
    dialog.get_by_text("2 partitions", exact=True).wait_for()
    page.screenshot(path=SCREENSHOTS / "weeks-06-backfill-dialog.png")
    dialog.get_by_role("button", name="Launch backfill").click()
    page.get_by_text(re.compile(r"Created backfill")).first.wait_for()
    deadline = time.monotonic() + RUN_TIMEOUT
    with dg.DagsterInstance.get() as instance:
        while instance.get_materialized_partitions(dg.AssetKey("weekly_raw_data")) != {*UI_WEEKS, *more}:
            log = log_tail(tmp_path / "dagster-dev.log")
            assert time.monotonic() < deadline, f"the backfill did not make {more}:\n{log}"
            time.sleep(2)
        runs = [run for run in instance.get_runs() if run.run_id not in known]
        assert sorted(run.tags.get("dagster/partition") for run in runs) == more  # a run per week
        assert all(run.tags.get("dagster/backfill") for run in runs)
    store = artifact_store()
    assert all(store.get(f"raw_data.{week}:latest").metadata["partition"] == week for week in more)
