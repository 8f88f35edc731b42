"""Customer value from the fitted models (`core.customer_value`, `core.model_fits`) and the hold-out test of the
rule and the model (`analysis.prediction_quality`, `analysis.prediction_tracking`). Unpartitioned."""

import json
from datetime import date

import dagster as dg
import polars as pl

from assets import CUSTOMERS, column_schemas, markdown_table
from assets.customers import CUSTOMER_FACTS, read_orders
from assets.customers.models import Fit, FitError
from assets.customers.prediction import QUALITY_SCHEMA, TRACKING_SCHEMA, holdout_scores, quality, tracking
from assets.customers.value import SCHEMA, Fits, customer_value, fit
from assets.orders import STAGING_ORDERS
from pipelines.recovery import record_process
from pipelines.settings import ShopSettings
from pipelines.warehouse import Warehouse, read_table, replace_tables

CUSTOMER_VALUE = dg.AssetKey(["core", "customer_value"])
MODEL_FITS = dg.AssetKey(["core", "model_fits"])
PREDICTION_QUALITY = dg.AssetKey(["analysis", "prediction_quality"])
PREDICTION_TRACKING = dg.AssetKey(["analysis", "prediction_tracking"])
FITS_SCHEMA = {
    "fit_date": pl.Date, "model": pl.String, "unit": pl.String, "customers": pl.Int64, "log_likelihood": pl.Float64,
    "converged": pl.Boolean, "params": pl.String, "std_errors": pl.String, "intervals": pl.String,
    "frequency_spend_correlation": pl.Float64, "issues": pl.String,
}  # fmt: skip


def fit_rows(fits: Fits, fit_date: date, unit: str) -> pl.DataFrame:
    """core.model_fits rows: one per model, parameters, standard errors and 95% intervals as JSON objects, and
    why the data do not determine the fit (`issues`, a JSON list; empty when they do)."""

    def row(model: Fit, correlation: float | None) -> dict:
        return {
            "fit_date": fit_date, "model": model.model, "unit": unit, "customers": model.customers,
            "log_likelihood": model.log_likelihood, "converged": model.converged, "params": json.dumps(model.params),
            "std_errors": json.dumps(model.std_errors), "intervals": json.dumps(model.intervals),
            "frequency_spend_correlation": correlation, "issues": json.dumps(model.issues),
        }  # fmt: skip

    rows = [row(fits.purchases, None), row(fits.spend, fits.frequency_spend_correlation)]
    return pl.DataFrame(rows, schema=FITS_SCHEMA)


def _fit_metadata(fits: Fits) -> dict:
    return {
        f"{model.model}": dg.MetadataValue.json({
            "params": model.params, "std_errors": model.std_errors, "intervals": model.intervals,
            "log_likelihood": model.log_likelihood, "customers": model.customers, "converged": model.converged,
            "issues": list(model.issues),
        })
        for model in (fits.purchases, fits.spend)
    } | {"frequency_spend_correlation": round(fits.frequency_spend_correlation, 4)}  # fmt: skip


def value_assets(settings: ShopSettings) -> list[dg.AssetsDefinition]:
    key, warehouse = settings.key, Warehouse(database=str(settings.warehouse))
    fitted = dg.AssetCheckSpec("model_fitted", asset=key(CUSTOMER_VALUE), description="The models could be fitted.")

    @dg.multi_asset(
        name=f"{settings.id}__customer_value",
        specs=[
            dg.AssetSpec(key(CUSTOMER_VALUE), group_name=CUSTOMERS, deps=[key(CUSTOMER_FACTS)],
                         description="P(alive), expected purchases, spend and 12-month value, risk band and value "
                                     "tags from core.customer_facts: one row per customer as of the run's date."),
            dg.AssetSpec(key(MODEL_FITS), group_name=CUSTOMERS, deps=[key(CUSTOMER_FACTS)],
                         description="Fitted parameters, standard errors and log-likelihood from core.customer_facts: "
                                     "one row per fit date and model."),
        ],
        check_specs=[fitted],
        pool=settings.pool,
    )  # fmt: skip
    def customer_value_asset(context: dg.AssetExecutionContext):
        record_process(context)
        with warehouse.get_connection() as conn:
            facts = conn.sql("SELECT * FROM core.customer_facts").pl()
            as_of = facts["as_of_date"].max()
            try:
                fits = fit(facts, settings.value)
            except FitError as exc:
                # A shop too young for the models keeps its other work; the warning check says why.
                context.log.warning(f"Customer value as of {as_of}: no fit: {exc}")
                replace_tables(conn, {"core.customer_value": pl.DataFrame(schema=SCHEMA)})
                yield dg.MaterializeResult(asset_key=key(CUSTOMER_VALUE), metadata={"not_fitted": str(exc)})
                yield dg.MaterializeResult(asset_key=key(MODEL_FITS), metadata={"not_fitted": str(exc)})
                yield dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description=str(exc),
                                          check_name="model_fitted", asset_key=key(CUSTOMER_VALUE))  # fmt: skip
                return
            value = customer_value(facts, fits, settings.value)
            earlier = read_table(conn, "core.model_fits")
            earlier = earlier.filter(pl.col("fit_date") != as_of) if earlier is not None else None
            history = pl.concat(  # diagonal: rows from before a column was added keep it empty
                [*([earlier] if earlier is not None else []), fit_rows(fits, as_of, settings.value.unit)],
                how="diagonal",
            )
            replace_tables(conn, {"core.customer_value": value, "core.model_fits": history.sort("fit_date", "model")})
            schemas = column_schemas(conn, "core.customer_value", "core.model_fits")
        context.log.info(f"Customer value as of {as_of}: {fits.purchases.params}, {fits.spend.params}")
        yield dg.MaterializeResult(
            asset_key=key(CUSTOMER_VALUE),
            metadata={
                "as_of": str(as_of), "dagster/row_count": value.height, **_fit_metadata(fits),
                "dagster/column_schema": schemas["core.customer_value"],
                "risk_bands": dg.MetadataValue.json(dict(value.group_by("risk_band").len().sort("risk_band").rows())),
                "high_value_at_risk": int(value["tags"].str.contains("high_value_at_risk").sum()),
            },
        )  # fmt: skip
        yield dg.MaterializeResult(asset_key=key(MODEL_FITS), metadata={"dagster/row_count": history.height,
            "dagster/column_schema": schemas["core.model_fits"], **_fit_metadata(fits)})  # fmt: skip
        yield dg.AssetCheckResult(passed=True, check_name="model_fitted", asset_key=key(CUSTOMER_VALUE))

    @dg.multi_asset(
        name=f"{settings.id}__prediction_quality",
        specs=[
            dg.AssetSpec(key(PREDICTION_QUALITY), group_name=CUSTOMERS, deps=[key(STAGING_ORDERS), key(CUSTOMER_FACTS)],
                         description="The lifecycle rule and the model judged on the last value.holdout_days, from "
                                     "staging.orders: one row per method."),
            dg.AssetSpec(key(PREDICTION_TRACKING), group_name=CUSTOMERS,
                         deps=[key(STAGING_ORDERS), key(CUSTOMER_FACTS)],
                         description="Repeat purchases made and expected by the model fitted before the hold-out, "
                                     "from staging.orders: one row per week."),
        ],
        pool=settings.pool,
    )  # fmt: skip
    def prediction_quality(context: dg.AssetExecutionContext):
        record_process(context)
        with warehouse.get_connection() as conn:
            as_of = conn.sql("SELECT max(as_of_date) FROM core.customer_facts").fetchall()[0][0]
            orders = read_orders(conn, as_of)
            try:
                scores, fits, calibration_end = holdout_scores(orders, as_of, settings)
            except FitError as exc:
                # said of the orders before the hold-out, not of the shop: those are what the test fits on
                holdout = settings.value.holdout_days
                exc = f"no fit on the orders before the hold-out's {holdout} days (value.holdout_days): {exc}"
                context.log.warning(f"Prediction quality as of {as_of}: {exc}")
                replace_tables(
                    conn,
                    {
                        "analysis.prediction_quality": pl.DataFrame(schema=QUALITY_SCHEMA),
                        "analysis.prediction_tracking": pl.DataFrame(schema=TRACKING_SCHEMA),
                    },
                )
                for table in (PREDICTION_QUALITY, PREDICTION_TRACKING):
                    yield dg.MaterializeResult(asset_key=key(table), metadata={"not_fitted": str(exc)})
                return
            table = quality(scores, calibration_end, settings.value.holdout_days, fits)
            weekly = tracking(orders, fits, calibration_end, as_of, settings.value.unit)
            replace_tables(conn, {"analysis.prediction_quality": table, "analysis.prediction_tracking": weekly})
        yield dg.MaterializeResult(
            asset_key=key(PREDICTION_QUALITY),
            metadata={"dagster/row_count": table.height, "table": dg.MetadataValue.md(markdown_table(table))},
        )
        yield dg.MaterializeResult(asset_key=key(PREDICTION_TRACKING), metadata={"dagster/row_count": weekly.height})

    return [customer_value_asset, prediction_quality]
