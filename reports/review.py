"""The post-promotion review: goal attainment and what went best and worst first, then phases,
days, classes, migration, acquired customers, top sellers and data quality. Every figure comes
from `campaigns.results`, so the report and the table agree."""

import polars as pl
import pygal

from assets.campaigns.goals import TRAILING_DAYS
from assets.campaigns.results import BUILD_UP_NEWCOMERS
from pipelines.calendar import Event
from reports.outreach import campaign_lines, tell_sentence, uplift_chart
from reports.render import chart, figure, money, render
from reports.translations import CLASS_NAMES, TEXT

HEADLINE = ("revenue", "buyers", "new_buyers", "returning_buyers", "orders", "average_order_value")
PHASE_MEASURES = ("revenue", "buyers", "new_buyers", "orders", "average_order_value")
NOT_COMPLETED = ("open_orders", "cancelled_orders")  # shown beside the phases and for each day that has any
SHOWN_BEST_WORST = 3


def review_html(
    shop: str, currency: str, language: str, event: Event, comparable: Event | None, calendar: list[Event],
    results: pl.DataFrame, passed_over: list[Event] = (), response_days: int = 14, growth: dict | None = None,
    tier_moves: dict | None = None, audience_labels: dict[str, str] | None = None,
    band: tuple[float, float] | None = None, hold_outs: pl.DataFrame | None = None,
) -> str:  # fmt: skip
    """The review's HTML; `growth` the goals' inputs (assets.campaigns.goals.growth_of): how they were scaled;
    `tier_moves` the migration between member tiers (reports.tiers.tier_migration_section), None without tiers;
    `audience_labels`: the shop's own audiences' labels (settings: audiences); `band` the planning band's
    quantiles; `hold_outs` campaigns.hold_outs: what each list was sized to tell."""
    t, names = TEXT[language], CLASS_NAMES[language]

    def section(name: str) -> pl.DataFrame:
        return results.filter(pl.col("section") == name).with_columns(
            attainment=pl.when(pl.col("goal") > 0).then(pl.col("actual") / pl.col("goal"))
        )

    def wide(name: str) -> dict[str, dict[str, dict]]:
        """dimension -> measure -> row."""
        rows: dict[str, dict[str, dict]] = {}
        for row in section(name).iter_rows(named=True):
            rows.setdefault(row["dimension"], {})[row["measure"]] = row
        return rows

    overall = wide("event").get("all", {})
    for row in overall.values():  # beside each goal: the comparable's actual, the goal's growth on it, ours
        row["goal_growth"] = ratio(row["goal"], row["comparable"])
        row["change"] = None if row["comparable"] is None else ratio(row["actual"], row["comparable"])
        row["band_where"] = band_where(row)
    phases, days, classes = wide("phase"), wide("day"), wide("class")
    labels = {e.id: e.label for e in calendar}

    candidates = [
        (t["measure_" + m], row) for m, row in overall.items() if row["attainment"] is not None and m != "buyers"
    ] + [
        (f"{t['phase_' + p]} · {t['measure_revenue']}", measures["revenue"]) for p, measures in phases.items()
        if measures["revenue"]["attainment"] is not None
    ] + [
        (f"{names[c]} · {t['measure_response_rate']}", measures["response_rate"]) for c, measures in classes.items()
        if measures["response_rate"]["attainment"] is not None
    ]  # fmt: skip
    ranked = sorted(candidates, key=lambda item: item[1]["attainment"], reverse=True)
    # best: only what reached its goal; worst: only what fell short
    best = [item for item in ranked if item[1]["attainment"] >= 1][:SHOWN_BEST_WORST]
    worst = [item for item in ranked[::-1] if item[1]["attainment"] < 1][:SHOWN_BEST_WORST]

    day_keys = sorted(days)

    def revenue(kind: str) -> list:
        return [days[d]["revenue"][kind] for d in day_keys]

    series = {t["this_event"]: revenue("actual")}
    if comparable:
        series[t["comparable_event"].format(event=comparable.label)] = revenue("comparable")
    series[t["goal"]] = revenue("goal")
    # the sprint's days are marked in their labels, which are always shown; other labels every few days
    sprint = [i for i, d in enumerate(day_keys) if event.sprint[0].isoformat() <= d <= event.sprint[1].isoformat()]
    day_labels = [d[5:] + (f" {t['phase_sprint']}" if i in sprint else "") for i, d in enumerate(day_keys)]
    every = max(len(day_keys) // 10, 1)
    shown = [
        label for i, label in enumerate(day_labels)
        if i in sprint or (i % every == 0 and all(abs(i - j) * 2 >= every for j in sprint))
    ]  # fmt: skip
    daily = chart(
        pygal.Line,
        day_labels,
        series,
        x_label_rotation=45,
        show_minor_x_labels=False,
        dots_size=2,
        x_labels_major=shown,
        value_formatter=money(currency),
        max_scale=8,
    )
    attained = [(t["measure_" + m], overall[m]["attainment"]) for m in HEADLINE if overall.get(m, {}).get("attainment")]
    goal_chart = goal_attainment_chart(attained, t["of_goal"]) if attained else ""

    migration = section("migration")
    order = list(names)
    moves = {(r["dimension"], r["detail"]): int(r["actual"]) for r in migration.iter_rows(named=True)}
    starts = [c for c in order if any(k[0] == c for k in moves)]
    ends = [c for c in order if any(k[1] == c for k in moves)]
    migration_chart = (
        chart(pygal.StackedBar, [names[c] for c in starts],
              {names[e]: [moves.get((s, e), 0) for s in starts] for e in ends},
              height=360, x_label_rotation=35)
        if moves else ""
    )  # fmt: skip

    cohorts = [
        {"label": labels.get(key, t["outside_events"]), "this": key == event.id,
         **{m: row["actual"] for m, row in measures.items()}}
        for key, measures in wide("cohort").items()
    ]  # fmt: skip
    products = section("product").pivot(on="measure", index=["dimension", "detail"], values="actual")
    categories = section("category").pivot(on="measure", index="dimension", values="actual")
    quality = wide("quality")
    lines = campaign_lines(results, language, audience_labels)
    if hold_outs is not None:  # what each list was planned to tell, beside what it told
        planned = {(row["phase"], row["audience"]): row for row in hold_outs.iter_rows(named=True)}
        for line in lines:
            row = planned.get((line["dimension"], line["detail"]))
            line["planned"] = t["planned_to_tell"].format(sentence=tell_sentence(row, t)) if row else None
    outreach = {"title": t["outreach_title"], "intro": t["outreach_intro"].format(days=response_days),
                "lines": lines, "chart": uplift_chart(lines, language)}  # fmt: skip
    return render(
        "review.html.j2", language, shop=shop, currency=currency, event=event, comparable=comparable,
        passed_over=", ".join(e.label for e in passed_over),
        overall=overall, headline=HEADLINE, best=best, worst=worst, ranked=bool(ranked),
        phases=phases, phase_measures=PHASE_MEASURES, not_completed=NOT_COMPLETED,
        days_not_completed=[
            (d, *(days[d][m]["actual"] for m in ("orders", *NOT_COMPLETED)))
            for d in day_keys if any(days[d][m]["actual"] for m in NOT_COMPLETED)
        ],
        classes=[(c, names[c], classes[c]) for c in order if c in classes]
        + [(c, t[c], classes[c]) for c in (BUILD_UP_NEWCOMERS,) if c in classes],
        class_total=class_total(classes.values()),
        migration=(starts, ends, moves), class_names=names,
        acquired={r["dimension"]: int(r["actual"]) for r in section("acquired").iter_rows(named=True)},
        phase_new_buyers=int(sum(m["new_buyers"]["actual"] for m in phases.values() if "new_buyers" in m)),
        cohorts=cohorts, products=products.to_dicts(), categories=categories.to_dicts(),
        quality_all={m: r["actual"] for m, r in quality.pop("all", {}).items()},
        reasons=[(reason, int(m["rows"]["actual"])) for reason, m in quality.items()],
        daily_chart=daily, goal_chart=goal_chart, migration_chart=migration_chart, figure=figure, outreach=outreach,
        growth_basis=growth_basis(growth or {}, comparable, t), factor=factor, tier_moves=tier_moves,
        band_title=t["band"].format(low=round(band[0] * 100), high=round(band[1] * 100)) if band else None,
        band_share=f"{band[1] - band[0]:.0%}" if band else None,
    )  # fmt: skip


def band_where(row: dict) -> str | None:
    """Where a result fell against its planning band: inside, above or below; None without a band."""
    low, high = row.get("band_low"), row.get("band_high")
    if low is None or high is None:
        return None
    return "band_below" if row["actual"] < low else "band_above" if row["actual"] > high else "band_inside"


def class_total(classes) -> dict:
    """The class table's total: customers, buyers (the returning buyers) and the buyers' goal, and the rate."""
    total = {m: sum(row[m]["actual"] or 0 for row in classes) for m in ("customers", "buyers")}
    goals = [row["buyers"]["goal"] for row in classes if row["buyers"]["goal"] is not None]
    return total | {"goal": sum(goals) if goals else None, "response_rate": ratio(total["buyers"], total["customers"])}


def ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def factor(value: float | None) -> str:
    """A growth factor as a reader wants it: x1.10, or – where there is none."""
    return "–" if value is None else f"×{value:,.2f}"


def growth_basis(growth: dict, comparable: Event | None, t: dict) -> list[str]:
    """Sentences on how the goals were scaled from the comparable event (`growth`: the goals' inputs)."""
    if comparable is None or not growth:
        return []
    factors = {name: factor(growth.get(f"{name}_growth")) for name in ("buyer", "spend", "frequency", "order_value")}
    if "growth_rate_setting" in growth:
        return [t["growth_from_setting"].format(rate=f"{growth['growth_rate_setting']:+.1%}", **factors)]
    days = growth["trailing_days"]
    if days == 0:
        return [t["growth_no_data_before"].format(event=comparable.label, start=growth["data_start"])]
    sentences = [t["growth_measured"].format(days=days, **factors)]
    if growth.get("window_cut"):
        sentences.append(t["growth_window_cut"].format(
            start=growth["data_start"], days=days, full=TRAILING_DAYS, event=comparable.label))  # fmt: skip
    return sentences


HIT, MISSED = "#7a9a3a", "#b04a3a"


def goal_attainment_chart(attained: list[tuple[str, float]], name: str) -> str:
    """Actual as a share of goal per measure: green bars reached it, red ones fell short; a line at 100%."""
    top = max(1.25, max(value for _, value in attained))
    return chart(
        pygal.Bar, [label for label, _ in attained],
        {name: [{"value": value, "color": HIT if value >= 1 else MISSED} for _, value in attained]},
        value_formatter=lambda v: f"{v:.0%}", x_label_rotation=20, show_legend=False,
        y_labels=[step / 4 for step in range(int(top * 4) + 2)], y_labels_major=[1.0],
        css=["{{id}}.axis.y path.major { stroke: #222; stroke-width: 2; stroke-dasharray: none; }"],
    )  # fmt: skip
