"""The customer step of a shop in buckets (`buckets` above 1), as Dagster assets any worker runs: the summaries
and facts partitioned by bucket, the merge between them unpartitioned; the segment history and customer value the
same way (counts or statistics per bucket, one merge, each bucket finished). Thin wiring of
`assets.customers.buckets`."""

from datetime import date

import dagster as dg

from assets.customers.buckets import (
    count_history_bucket,
    finish_bucket,
    fit_buckets,
    history_bucket,
    labels,
    last_order_day,
    merge_buckets,
    merge_history,
    summarize_bucket,
    value_bucket,
)
from assets.orders import STAGING_ORDERS
from pipelines.settings import ShopSettings

# a group of their own: the shop's jobs select the customers group, whose daily step this one's partitions differ from
BUCKETS_GROUP = "customer_buckets"
BUCKET_SUMMARIES = dg.AssetKey(["buckets", "customer_summaries"])
BUCKET_CUTS = dg.AssetKey(["buckets", "customer_cuts"])
BUCKET_CUSTOMERS = dg.AssetKey(["buckets", "customers"])
BUCKET_HISTORY_COUNTS = dg.AssetKey(["buckets", "history_counts"])
BUCKET_HISTORY_CUTS = dg.AssetKey(["buckets", "history_cuts"])
BUCKET_HISTORY = dg.AssetKey(["buckets", "segment_history"])
BUCKET_VALUE_FIT = dg.AssetKey(["buckets", "value_fit"])
BUCKET_VALUE = dg.AssetKey(["buckets", "customer_value"])


class BucketConfig(dg.Config):
    as_of: str | None = None  # YYYY-MM-DD; default: the last day with orders in any bucket


def bucket_assets(settings: ShopSettings) -> list[dg.AssetsDefinition]:
    key = settings.key
    partitions = dg.StaticPartitionsDefinition(labels(settings.buckets))
    orders = dg.AssetDep(key(STAGING_ORDERS), partition_mapping=dg.AllPartitionMapping())

    @dg.asset(key=key(BUCKET_SUMMARIES), partitions_def=partitions, group_name=BUCKETS_GROUP, deps=[orders])
    def customer_summaries(context: dg.AssetExecutionContext, config: BucketConfig) -> dg.MaterializeResult:
        """Customer summaries and value counts from the bucket's clean orders (Parquet): one row per customer."""
        as_of = date.fromisoformat(config.as_of) if config.as_of else last_order_day(settings)
        summary = summarize_bucket(settings, context.partition_key, as_of)
        return dg.MaterializeResult(metadata={"as_of": str(as_of), "dagster/row_count": summary.height})

    @dg.asset(key=key(BUCKET_CUTS), group_name=BUCKETS_GROUP, deps=[key(BUCKET_SUMMARIES)])
    def customer_cuts() -> dg.MaterializeResult:
        """RFM thresholds, quintile cuts and typical cycles of all customers, from every bucket's value counts."""
        as_of, cuts = merge_buckets(settings)
        return dg.MaterializeResult(metadata={
            "as_of": str(as_of), "centers": dg.MetadataValue.json(cuts.rfm.centers),
            "quintiles": dg.MetadataValue.json(cuts.rfm.quintiles),
            "typical_cycles": dg.MetadataValue.json({"shop": cuts.cycles.shop, **cuts.cycles.by_category}),
        })  # fmt: skip

    @dg.asset(key=key(BUCKET_CUSTOMERS), partitions_def=partitions, group_name=BUCKETS_GROUP, deps=[key(BUCKET_CUTS)])
    def bucket_customers(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Facts and RFM (scores, class, lifecycle stage, tags) of the bucket's customers, from its summary and
        the merged cuts (Parquet): one row per customer."""
        snapshot = finish_bucket(settings, context.partition_key)
        return dg.MaterializeResult(metadata={"dagster/row_count": snapshot.rfm.height})

    @dg.asset(key=key(BUCKET_HISTORY_COUNTS), partitions_def=partitions, group_name=BUCKETS_GROUP, deps=[orders])
    def history_counts(context: dg.AssetExecutionContext, config: BucketConfig) -> dg.MaterializeResult:
        """Buyers, their sums and changed value counts on each day the segment history records, from the
        bucket's clean orders (Parquet): one row per recorded day (and changed value)."""
        as_of = date.fromisoformat(config.as_of) if config.as_of else last_order_day(settings)
        totals = count_history_bucket(settings, context.partition_key, as_of)
        return dg.MaterializeResult(metadata={"as_of": str(as_of), "dagster/row_count": totals.height})

    @dg.asset(key=key(BUCKET_HISTORY_CUTS), group_name=BUCKETS_GROUP, deps=[key(BUCKET_HISTORY_COUNTS)])
    def history_cuts() -> dg.MaterializeResult:
        """RFM centres and typical cycles of all customers on each recorded day, from every bucket's history
        counts: one entry per recorded day."""
        cuts = merge_history(settings)
        return dg.MaterializeResult(metadata={"days": len(cuts), "first": str(min(cuts)), "last": str(max(cuts))})

    @dg.asset(key=key(BUCKET_HISTORY), partitions_def=partitions, group_name=BUCKETS_GROUP,
              deps=[key(BUCKET_HISTORY_CUTS)])  # fmt: skip
    def segment_history(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Class and lifecycle stretches of the bucket's customers, from its clean orders and the merged cuts of
        each recorded day (Parquet): one row per customer and stretch, as core.segment_history."""
        history = history_bucket(settings, context.partition_key)
        return dg.MaterializeResult(metadata={"dagster/row_count": history.height})

    @dg.asset(key=key(BUCKET_VALUE_FIT), group_name=BUCKETS_GROUP, deps=[key(BUCKET_CUSTOMERS)])
    def value_fit() -> dg.MaterializeResult:
        """The purchase and spend models fitted once on every bucket's fit statistics, and the top spenders' cut
        of all customers, from the buckets' facts: one fit."""
        fits = fit_buckets(settings)
        return dg.MaterializeResult(metadata={
            model.model: dg.MetadataValue.json({"params": model.params, "customers": model.customers,
                                                "converged": model.converged})
            for model in (fits.purchases, fits.spend)
        })  # fmt: skip

    @dg.asset(key=key(BUCKET_VALUE), partitions_def=partitions, group_name=BUCKETS_GROUP, deps=[key(BUCKET_VALUE_FIT)])
    def customer_value(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """P(alive), expected purchases, spend and 12-month value, risk band and value tags of the bucket's
        customers, from its facts and the merged fit (Parquet): one row per customer, as core.customer_value."""
        value = value_bucket(settings, context.partition_key)
        return dg.MaterializeResult(metadata={"dagster/row_count": value.height})

    return [
        customer_summaries, customer_cuts, bucket_customers, history_counts, history_cuts, segment_history, value_fit,
        customer_value,
    ]  # fmt: skip
