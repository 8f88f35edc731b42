"""The customer step of a shop in buckets (`buckets` above 1), as Dagster assets any worker runs: the summaries
and facts partitioned by bucket, the merge between them unpartitioned. Thin wiring of `assets.customers.buckets`."""

from datetime import date

import dagster as dg

from assets.customers.buckets import finish_bucket, labels, last_order_day, merge_buckets, summarize_bucket
from assets.orders import STAGING_ORDERS
from pipelines.settings import ShopSettings

# a group of their own: the shop's jobs select the customers group, whose daily step this one's partitions differ from
BUCKETS_GROUP = "customer_buckets"
BUCKET_SUMMARIES = dg.AssetKey(["buckets", "customer_summaries"])
BUCKET_CUTS = dg.AssetKey(["buckets", "customer_cuts"])
BUCKET_CUSTOMERS = dg.AssetKey(["buckets", "customers"])


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

    return [customer_summaries, customer_cuts, bucket_customers]
