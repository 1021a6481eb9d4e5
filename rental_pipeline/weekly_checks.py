"""The checks of the weekly assets: the rules of `raw_data` and `clean_sample`, judged per week.

Declared partitioned like the assets they guard, so the catalog shows each week's check status
and a week that fails is blocked alone: its version is flagged and refused downstream, while the
other weeks go on. A week's drift is measured against the newest reference up to it
(`checks.reference_of`).
"""

import warnings

import dagster as dg

from rental_pipeline.checks import (
    CLEAN_SAMPLE_CHECKS,
    RAW_DATA_CHECKS,
    WARN_ONLY_CHECKS,
    blocking_checks,
    judge_clean_sample,
    judge_raw_data,
)
from rental_pipeline.partitions import WEEKS

# Partitioned checks are a Dagster preview; the rules and what they flag do not depend on it.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    weekly_raw_data_checks = blocking_checks(
        "weekly_raw_data", RAW_DATA_CHECKS, partitions_def=WEEKS, input_name="raw_data"
    )(judge_raw_data)
    weekly_clean_sample_checks = blocking_checks(
        "weekly_clean_sample",
        CLEAN_SAMPLE_CHECKS,
        warn_only=WARN_ONLY_CHECKS,
        partitions_def=WEEKS,
        input_name="clean_sample",
    )(judge_clean_sample)

weekly_checks = [weekly_raw_data_checks, weekly_clean_sample_checks]
