"""Does measured uplift find the lift the demo shop simulates? Prints one line per campaign list and the share
of lists whose 95% interval holds the simulated effect (target: at least 90%).

    .venv/bin/regulars demo && .venv/bin/python bench/uplift.py [--warehouse data/warehouse.duckdb]

The simulated effect of a list is what the generator's answers to that list did to its contacted customers: the
share who bought in the response window only thanks to such an answer (no other completed order in the window,
answers to other lists included: those came whatever this list did)."""

import argparse
from datetime import timedelta

import duckdb
import polars as pl

from pipelines.settings import load_settings
from pipelines.sources import order_source
from pipelines.sources.synthetic import generate_orders, response_orders
from pipelines.warehouse import COMPLETED

TARGET = 0.90


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", default="data/warehouse.duckdb")
    parser.add_argument("--config", default=None)
    args = parser.parse_args()
    settings = load_settings(args.config)
    source = settings.source
    clean = generate_orders(source.seed, source.customers, settings.history_start, settings.history_end, 0.0)
    answers = response_orders(clean, order_source(settings).responses(), source.seed, settings.history_end)
    with duckdb.connect(args.warehouse, read_only=True) as conn:
        targets = conn.sql("SELECT event_id, phase, audience, customer_id, contact_date FROM outreach.campaign_targets"
                           " WHERE NOT held_out").pl()  # fmt: skip
        orders = conn.sql(f"SELECT customer_id, order_id, order_date FROM staging.orders WHERE status = '{COMPLETED}'")
        orders = orders.pl()
        results = conn.sql(
            "SELECT event_id, dimension AS phase, detail AS audience, measure, actual"
            " FROM campaigns.results WHERE section = 'outreach' AND detail IS NOT NULL"
        ).pl()
    window = settings.outreach.response_days
    lists = ["event_id", "phase", "audience"]
    window_end = pl.col("contact_date") + timedelta(days=window - 1)
    in_window = (
        targets.join(orders.join(answers.select("order_id", "draw"), on="order_id", how="left"), on="customer_id")
        .filter(pl.col("order_date").is_between(pl.col("contact_date"), window_end))
        .with_columns(answer=pl.col("draw") == pl.concat_str("event_id", "phase", separator="/"))
        .group_by(*lists, "customer_id")
        .agg(only_answers=pl.col("answer").fill_null(False).all())
    )  # fmt: skip
    simulated = (
        targets.join(in_window, on=[*lists, "customer_id"], how="left")
        .group_by(lists)
        .agg(simulated=pl.col("only_answers").fill_null(False).mean())
    )
    measured = results.pivot(on="measure", index=lists, values="actual").filter(pl.col("held_out") > 0)
    table = (
        measured.join(simulated, on=lists)
        .with_columns(holds=pl.col("simulated").is_between(pl.col("uplift_low"), pl.col("uplift_high")))
        .select(*lists, "contacted", "held_out", "simulated", "uplift", "uplift_low", "uplift_high", "holds")
        .sort(lists)
    )
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, float_precision=3):
        print(table)
    share = table["holds"].mean()
    print(f"lists whose 95% interval holds the simulated effect: {table['holds'].sum()} of {table.height} = "
          f"{share:.0%} (target at least {TARGET:.0%}: {'met' if share >= TARGET else 'not met'})")  # fmt: skip


if __name__ == "__main__":
    main()
