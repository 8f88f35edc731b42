"""Data quality: Great Expectations suites (`checks.suites`) and the Dagster asset checks
that run them, blocking bad data before it reaches customers' lists."""
