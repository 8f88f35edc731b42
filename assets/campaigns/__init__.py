"""Sales events: a baseline of customers, goals from the comparable event with their planning bands, who to talk
to in each phase (`outreach.campaign_targets`) with control groups sized to tell (`campaigns.hold_outs`), the
plan report, and, once the after-glow is over, the results. One static partition per event id."""

import json

import dagster as dg
import polars as pl

from assets import CAMPAIGNS, column_schemas
from assets.campaigns.bands import Shop, band_of, list_uplift, planning_bands, with_bands
from assets.campaigns.goals import counting_lost, event_actuals, plan_goals, selling_window
from assets.campaigns.hold_outs import HOLD_OUT_SCHEMA, earlier_lists, list_counts, pooled_detectable, size_hold_outs
from assets.campaigns.results import event_results, outreach_results
from assets.campaigns.targets import campaign_targets
from assets.customers import TIER_HISTORY
from assets.customers.facts import customer_facts
from assets.customers.models import FitError
from assets.customers.snapshot import customer_snapshot
from assets.customers.tiers import tiers_on
from assets.customers.value import UNIT_DAYS, fit, latest_fit, model_inputs
from assets.customers.value_assets import MODEL_FITS
from assets.orders import ORDER_LINES, REJECTS, STAGING_ORDERS
from assets.outreach import (
    CAMPAIGN_TARGETS,
    audience_contacts,
    campaign_contacts,
    contacts_on_record,
    opted_out,
    reminder_contacts,
    unmatched_opt_outs,
    withdraw,
    write_outbox,
    write_reminder_outbox,
)
from assets.outreach.audiences import customer_table, members
from assets.outreach.gate import opt_outs_on_record
from assets.outreach.offers import roles_with_categories, with_offers
from assets.outreach.reminders import in_risk_bands, reachable
from pipelines.automation import BASELINE, PLANNED_THROUGH, planned_step
from pipelines.calendar import Event, comparable, passed_over
from pipelines.files import write_text_atomically
from pipelines.recovery import record_process
from pipelines.settings import ShopSettings
from pipelines.warehouse import (
    COMPLETED,
    Warehouse,
    loaded_until,
    read_table,
    replace_rows,
    transaction,
    write_rows,
)
from reports.messages import category_name, event_name, render_message
from reports.plan import plan_html

BASELINES = dg.AssetKey(["campaigns", "baselines"])
GOALS = dg.AssetKey(["campaigns", "goals"])
HOLD_OUTS = dg.AssetKey(["campaigns", "hold_outs"])
RESULTS = dg.AssetKey(["campaigns", "results"])
WIN_BACK = "important_winback"  # the class whose audience is the win-back list (value.win_back_risk_bands)


def event_partitions(settings: ShopSettings) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition([event.id for event in settings.calendar()])


def campaign_assets(settings: ShopSettings) -> list[dg.AssetsDefinition]:
    key, warehouse = settings.key, Warehouse(database=str(settings.warehouse))
    calendar = settings.calendar()
    events = {event.id: event for event in calendar}
    lost_after = getattr(settings.source, "open_lost_after_days", None)  # file sources only
    # an event reads all history
    every_day = dg.AssetDep(key(STAGING_ORDERS), partition_mapping=dg.AllPartitionMapping())
    specs = [
        dg.AssetSpec(key(BASELINES), group_name=CAMPAIGNS, deps=[every_day], description=(
            "Customers as of an event's first build-up day, from staging.orders: one row per event and customer.")),
        dg.AssetSpec(key(GOALS), group_name=CAMPAIGNS, deps=[key(BASELINES), every_day], description=(
            "Goals from the comparable event, from staging.orders and campaigns.baselines: one row per event and "
            "measure (and class), with the formula, its inputs and a planning band from the models fitted on the "
            "baseline.")),
        dg.AssetSpec(key(HOLD_OUTS), group_name=CAMPAIGNS, deps=[key(BASELINES), every_day], description=(
            "Each campaign list's control group sized to tell, from outreach.campaign_targets of earlier events and "
            "staging.orders: one row per event, phase and audience.")),
        dg.AssetSpec(key(CAMPAIGN_TARGETS), group_name=CAMPAIGNS,
                     deps=[key(BASELINES), every_day, key(MODEL_FITS), key(TIER_HISTORY)], description=(
            "Who to reach in each phase, from campaigns.baselines, staging.orders, core.model_fits (win-back "
            "risk bands) and core.tier_history (the member tier in messages): one row per event, phase "
            "and customer, with channel and message; also written to the outbox as CSV and Parquet.")),
    ]  # fmt: skip

    @dg.multi_asset(
        name=f"{settings.id}__plan_event", specs=specs, partitions_def=event_partitions(settings), pool=settings.pool
    )
    def plan_event(context: dg.AssetExecutionContext):
        record_process(context)
        event = events[context.partition_key]
        with warehouse.get_connection() as conn:
            orders = counting_lost(conn.sql("SELECT * FROM staging.orders").pl(), lost_after)
            # an event without orders (say, inside a gap in the data) is never the comparable one
            enough = settings.events.min_comparable_orders
            previous = comparable(event, calendar, lambda e: event_actuals(orders, e)["orders"] >= enough)
            baseline = customer_snapshot(orders, event.start, settings)
            baseline_then = customer_snapshot(orders, previous.start, settings).rfm if previous else None
            skipped = passed_over(event, calendar, previous)
            goals = plan_goals(event, previous, orders, baseline.rfm, baseline_then, settings.events.growth_rate,
                               settings.events.default_goals, skipped, settings.history_start)  # fmt: skip
            known_until = orders["order_date"].max() if not orders.is_empty() else event.start
            cap, campaign_first = settings.outreach.frequency_cap_days, settings.outreach.cap_priority == "campaign"
            others = pl.concat([
                campaign_contacts(conn, event.start, event.end, cap, exclude_event=event.id),
                reminder_contacts(conn, event.start, event.end, cap, yields=campaign_first),
                audience_contacts(conn, event.start, event.end, cap),
            ])  # fmt: skip
            facts_now = customer_facts(orders, known_until, [e.sprint for e in calendar])
            opt_outs = opt_outs_on_record(conn, settings)

            def reach(candidates: pl.DataFrame, day, earlier: pl.DataFrame) -> pl.DataFrame:
                earlier = earlier.select("customer_id", "contact_date", yields=pl.lit(False))
                contacts = pl.concat([others, earlier], how="vertical_relaxed")
                return reachable(candidates, day, opted_out(opt_outs), contacts, cap)

            language = settings.outreach.language

            # the member tier at the baseline, as the classes are
            tiers_then = dict(tiers_on(read_table(conn, "core.tier_history"), event.start).rows())
            tier_of_id = {tier.id: tier for tier in settings.tiers}

            def render(audience: str, row: dict) -> str:
                category = category_name(row["main_category"], language, settings.outreach.category_names)
                return render_message("campaign", language, audience, shop=settings.name,
                                      event=event_name(event, language), category=category,
                                      member=tier_of_id.get(tiers_then.get(row["customer_id"])))  # fmt: skip

            win_back = pl.col("rfm_class") == WIN_BACK
            audiences = pl.concat([
                baseline.rfm.filter(~win_back),
                in_risk_bands(baseline.facts, baseline.rfm.filter(win_back), read_table(conn, "core.model_fits"),
                              event.start, settings.value.win_back_risk_bands, settings.value),
            ])  # fmt: skip
            fit_then = latest_fit(read_table(conn, "core.model_fits"), event.start)
            on_record = contacts_on_record(conn, except_event=event.id)

            def own_audience(name: str):
                def members_on(day, earlier: pl.DataFrame) -> pl.Series:
                    contacts = pl.concat([on_record, earlier.select("customer_id", "contact_date")])
                    table = customer_table(baseline.facts, baseline.rfm, fit_then, contacts, day, settings.value)
                    return members(table, settings.audiences[name])

                return members_on

            response_days, control = settings.outreach.response_days, settings.outreach.control
            earlier = earlier_lists(read_table(conn, "outreach.campaign_targets"), orders, response_days, event.start)
            past, sized = list_counts(earlier), []

            def shares(phase: str, sizes: pl.DataFrame) -> pl.DataFrame:
                lists = sizes.with_columns(event_id=pl.lit(event.id), phase=pl.lit(phase))
                sized.append(size_hold_outs(lists, past, control))
                return sized[-1].select("audience", "control_share")

            targets = campaign_targets(event, settings.events.plan, audiences, facts_now, orders, known_until,
                                       reach, render, control,
                                       {name: own_audience(name) for name in settings.audiences}, shares)  # fmt: skip
            lines = conn.sql("SELECT order_id, sku, product, category FROM staging.order_lines").pl()
            targets = with_offers(targets, offer_customers(baseline, facts_now),
                                  roles_with_categories(completed_until(orders, event.start), lines, event.start),
                                  settings.outreach.offers)  # fmt: skip
            hold_outs = pl.concat(sized) if sized else pl.DataFrame(schema=HOLD_OUT_SCHEMA)
            contacted = int((~targets["held_out"]).sum())
            goals, no_band = banded(goals, baseline.facts, event, list_uplift(earlier, contacted))
            with transaction(conn):
                write_rows(conn, {
                    "campaigns.baselines": baseline.rfm.with_columns(event_id=pl.lit(event.id)),
                    "campaigns.goals": goals, "outreach.campaign_targets": targets, "campaigns.hold_outs": hold_outs,
                }, "event_id", event.id)  # fmt: skip
                withdrawn = withdraw(conn, "outreach.repurchase_reminders", targets, cap) if campaign_first else None
            if withdrawn is not None and withdrawn.height:  # the outbox follows its table
                days = withdrawn["contact_date"]
                write_reminder_outbox(conn, settings, days.min(), days.max(), opt_outs)
            outbox = write_outbox(conn, settings, event.id, targets, opt_outs)
            schemas = column_schemas(conn, "campaigns.baselines", "campaigns.goals", "campaigns.hold_outs")
        plans = {}
        for language in ("en", "zh"):
            plans[language] = settings.output / "reports" / f"plan-{event.id}.{language}.html"
            write_text_atomically(plans[language], plan_html(
                settings.name, settings.currency, language, event, previous, goals, hold_outs,
                pooled_detectable(hold_outs), no_band, band_of(goals), settings.audience_labels,
            ))  # fmt: skip
        yield dg.MaterializeResult(
            asset_key=key(BASELINES),
            metadata={
                "as_of": str(event.start),
                "rows": baseline.rfm.height,
                "dagster/column_schema": schemas["campaigns.baselines"],
            },
        )
        shop_goals = goals.filter(pl.col("rfm_class").is_null() & pl.col("goal").is_not_null())
        yield dg.MaterializeResult(asset_key=key(GOALS), metadata={
            "comparable_event": previous.id if previous else "none", "rows": goals.height,
            "dagster/column_schema": schemas["campaigns.goals"],
            PLANNED_THROUGH: planned_step(settings, event, known_until) or BASELINE,
            **({"passed_over": ", ".join(e.id for e in skipped)} if skipped else {}),
            "goals": dg.MetadataValue.json(dict(shop_goals.select("measure", "goal").rows())),
            "bands": dg.MetadataValue.json({m: [low, high] for m, low, high in shop_goals.select(
                "measure", "band_low", "band_high").rows() if low is not None}),
            **({"no_band": no_band} if no_band else {}),
            **{f"plan_{language}": dg.MetadataValue.path(str(path)) for language, path in plans.items()},
        })  # fmt: skip
        yield dg.MaterializeResult(asset_key=key(HOLD_OUTS), metadata={
            "rows": hold_outs.height, "can_tell": int(hold_outs["can_tell"].sum()),
            "dagster/column_schema": schemas["campaigns.hold_outs"],
            "control_shares": dg.MetadataValue.json({f"{p}/{a}": s for p, a, s in hold_outs.select(
                "phase", "audience", "control_share").rows()}),
        })  # fmt: skip
        yield dg.MaterializeResult(asset_key=key(CAMPAIGN_TARGETS), metadata={
            "rows": targets.height, "held_out": int(targets["held_out"].sum()),
            "outbox": dg.MetadataValue.path(str(outbox)),
            "reminders_withdrawn": withdrawn.height if withdrawn is not None else 0,
            **unmatched_opt_outs(context, opt_outs),
            "by_phase": dg.MetadataValue.json(dict(targets.group_by("phase").len().sort("phase").iter_rows())),
        })  # fmt: skip

    @dg.asset(
        key=key(RESULTS), group_name=CAMPAIGNS, partitions_def=event_partitions(settings), pool=settings.pool,
        deps=[key(BASELINES), key(GOALS), every_day, key(ORDER_LINES), key(REJECTS)],
        output_required=False,
    )  # fmt: skip
    def campaign_results(context: dg.AssetExecutionContext):
        """Actual against goal, from staging.* and campaigns.baselines/goals: one row per event, section,
        dimension and measure, made once the orders of the after-glow's last day are in."""
        record_process(context)
        event = events[context.partition_key]
        with warehouse.get_connection() as conn:
            loaded = loaded_until(conn)
            if loaded is None or loaded < event.end:
                context.log.info(f"{event.label} ends {event.end}; orders are loaded until {loaded}: no results yet")
                return
            goals = read_table(conn, "campaigns.goals", event_id=event.id)
            if goals is None or goals.is_empty():
                raise dg.Failure(f"{event.id} has no goals yet: plan it first (`regulars report {event.id}` does both)")
            orders = counting_lost(conn.sql("SELECT * FROM staging.orders").pl(), lost_after)
            lines = conn.sql("SELECT * FROM staging.order_lines").pl()
            days = [event.start, event.end]
            rejects = conn.sql("SELECT reason FROM staging.rejects WHERE order_date BETWEEN ? AND ?", params=days).pl()
            rows_in = conn.sql(
                "SELECT count(*) FROM raw.orders WHERE order_date BETWEEN ? AND ?", params=days
            ).fetchall()[0][0]
            results = event_results(
                event, comparable_of(goals, events), calendar, orders, lines,
                read_table(conn, "campaigns.baselines", event_id=event.id), goals,
                customer_snapshot(orders, event.end, settings).rfm, rejects, rows_in,
            )  # fmt: skip
            targets = read_table(conn, "outreach.campaign_targets", event_id=event.id)
            if targets is not None and not targets.is_empty():
                results = pl.concat([results, outreach_results(event.id, targets, orders, loaded, settings.outreach)])
            replace_rows(conn, {"campaigns.results": results}, "event_id", event.id)
            schema = column_schemas(conn, "campaigns.results")["campaigns.results"]
        overall = results.filter(pl.col("section") == "event")
        yield dg.MaterializeResult(metadata={
            "rows": results.height, "dagster/column_schema": schema,
            "attainment": dg.MetadataValue.json({
                r["measure"]: round(r["actual"] / r["goal"], 3) for r in overall.iter_rows(named=True) if r["goal"]
            }),
        })  # fmt: skip

    def banded(goals: pl.DataFrame, facts: pl.DataFrame, event: Event, uplift) -> tuple[pl.DataFrame, str | None]:
        """The goals with their planning bands, from the models fitted on the baseline's facts (what the shop
        knew before the event), and why there are none when the models cannot be fitted."""
        set_as = dict(goals.filter(pl.col("rfm_class").is_null() & pl.col("goal").is_not_null())
                      .select("measure", "goal").rows())  # fmt: skip
        if not set_as:
            return with_bands(goals, {}, settings.events.band), None
        first, last = selling_window(event)
        try:
            fits = fit(facts, settings.value)
        except FitError as exc:
            return with_bands(goals, {}, settings.events.band), str(exc)
        shop = Shop(*model_inputs(facts, settings.value.unit))
        window = ((last - first).days + 1) / UNIT_DAYS[settings.value.unit]
        bands = planning_bands(set_as, shop, fits.purchases, fits.spend, window, uplift, settings.events.band,
                               settings.events.band_draws)  # fmt: skip
        return with_bands(goals, bands, settings.events.band), None

    return [plan_event, campaign_results]


def offer_customers(baseline, facts_now: pl.DataFrame) -> pl.DataFrame:
    """What an offer is chosen by (customer_id, stage, purchase_days, main_category): the customers of the
    event's baseline as they were then, and those who first bought since as they are now (one-time buyers)."""
    then = baseline.facts.select("customer_id", "purchase_days", "main_category").join(
        baseline.rfm.select("customer_id", "stage"), on="customer_id"
    )
    since = facts_now.join(then, on="customer_id", how="anti").select(
        "customer_id", "purchase_days", "main_category", stage=pl.lit(None, pl.String)
    )
    return pl.concat([then, since.select(then.columns)])


def completed_until(orders: pl.DataFrame, day) -> pl.DataFrame:
    """The completed orders up to `day` (order_id, customer_id, order_date, category), as product roles read them."""
    done = orders.filter((pl.col("status") == COMPLETED) & (pl.col("order_date") <= day))
    return done.select("order_id", "customer_id", "order_date", "category")


def comparable_of(goals: pl.DataFrame, events: dict[str, Event]) -> Event | None:
    """The event an event's goals were set from (campaigns.goals), so that results and reviews name the same one."""
    ids = goals["comparable_event"].drop_nulls()
    return events[ids[0]] if len(ids) else None


def passed_over_of(goals: pl.DataFrame, events: dict[str, Event]) -> list[Event]:
    """The events the goals passed over for having too few orders."""
    inputs = goals["inputs"].drop_nulls()
    return [events[i] for i in json.loads(inputs[0]).get("passed_over", [])] if len(inputs) else []
