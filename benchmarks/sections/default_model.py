"""Section 4b: the previous default model against the current one (benchmarks/default_model.py):
test MAE on sample1 (seed 42, and the mean over seeds 1, 7, 13 with the paired gaps), on synthetic
listings, the training step's time on NYC-sized data, scoring rows per second, model file size."""

from __future__ import annotations

import statistics

from benchmarks.harness import SAMPLE1, SAMPLE1_SHOWN, Bench, log

LABEL = "4b default model"
FIT_GOAL_SECONDS = 60.0  # the training step on NYC-sized data, two cores


def run(bench: Bench) -> None:
    from benchmarks import default_model as dm

    sizes, add = bench.sizes, bench.report.add
    use_sample = sizes.use_sample and SAMPLE1.exists()
    # The other seeds cost three more fits of each model: the full run only.
    seeds = (dm.REFERENCE_SEED, *dm.OTHER_SEEDS) if sizes.name == "full" else (dm.REFERENCE_SEED,)
    figures = dm.measure(
        source=SAMPLE1 if use_sample else None, rows=sizes.nyc_rows, score_rows=sizes.predict_rows[0],
        repeats=sizes.repeats, seeds=seeds, log=lambda message: log(f"default model: {message}"),
    )
    bench.report.results["default_model"] = dm.as_json(figures)
    old, new = figures[dm.OLD], figures[dm.NEW]
    if use_sample:
        o, n = old.sample1[dm.REFERENCE_SEED], new.sample1[dm.REFERENCE_SEED]
        add(LABEL, "sample1 test MAE, reference split (seed 42): previous / current default",
            f"{o['test_mae']:.2f} / {n['test_mae']:.2f}", f"<= {dm.GOAL_SAMPLE1_TEST_MAE:.1f}",
            n["test_mae"] <= dm.GOAL_SAMPLE1_TEST_MAE,
            note=f"validation MAE {o['val_mae']:.2f} / {n['val_mae']:.2f}, from fits on train only; "
            "the current default is stored refitted on train + validation")
        gaps = dm.paired_gaps(figures)
        if gaps:
            add(LABEL, f"sample1 mean test MAE over seeds {', '.join(map(str, dm.OTHER_SEEDS))}: previous / current",
                f"{old.other_seeds_mean():.2f} / {new.other_seeds_mean():.2f}", "lower on every seed",
                all(gap < 0 for gap in gaps), note="paired gaps " + ", ".join(f"{gap:+.2f}" for gap in gaps))
    else:
        add(LABEL, "sample1 test MAE", "skipped", note=f"{SAMPLE1_SHOWN} not found or not used at this size")
    add(LABEL, f"synthetic test MAE ({sizes.nyc_rows:,} rows): previous / current",
        f"{old.synthetic_test_mae:.2f} / {new.synthetic_test_mae:.2f}")
    add(LABEL, f"training step, synthetic {sizes.nyc_rows:,} rows: previous / current",
        f"{old.fit_seconds:.1f} s / {new.fit_seconds:.1f} s", f"< {FIT_GOAL_SECONDS:.0f} s",
        new.fit_seconds < FIT_GOAL_SECONDS,
        note=f"CPU {old.fit_cpu_seconds:.1f} s / {new.fit_cpu_seconds:.1f} s; each: fit on train + refit")
    old_rate, new_rate = statistics.median(old.rows_per_second), statistics.median(new.rows_per_second)
    old_cpu, new_cpu = statistics.median(old.rows_per_cpu_second), statistics.median(new.rows_per_cpu_second)
    add(LABEL, f"predict_csv on {sizes.predict_rows[0]:,} synthetic rows: previous / current",
        f"{old_rate:,.0f} / {new_rate:,.0f} rows/s", "",
        note=f"median of {len(new.rows_per_second)} interleaved runs each; wall clock, noisy on a shared machine")
    add(LABEL, "the same, rows per CPU second: previous / current",
        f"{old_cpu:,.0f} / {new_cpu:,.0f}", ">= 0.95 x previous", new_cpu >= 0.95 * old_cpu,
        note="CPU time of the scoring process, the steadier figure; single runs spread by about 7%")
    add(LABEL, "model file (skops): previous / current",
        f"{old.model_bytes / 2**20:.2f} / {new.model_bytes / 2**20:.2f} MiB",
        note=f"fitted on {sizes.nyc_rows:,} synthetic rows")
