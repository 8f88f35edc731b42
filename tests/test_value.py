"""The purchase and spend models against published values and simulated customers, and customer value."""

import json
from datetime import date, datetime, time
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
from scipy import integrate, stats
from scipy.special import gammaln

from assets.customers.models import (
    Customers,
    FitError,
    bgnbd_conditional,
    bgnbd_expected,
    bgnbd_log_likelihood,
    bgnbd_p_alive,
    fit_bgnbd,
    fit_gammagamma,
    gammagamma_log_likelihood,
    paretonbd_conditional,
    paretonbd_expected,
    paretonbd_log_likelihood,
    paretonbd_p_alive,
    simulate_bgnbd,
    simulate_spend,
)
from assets.customers.prediction import holdout_scores, quality
from assets.customers.value import customer_value, fit, latest_fit, model_inputs, top_spend, with_value_tags
from assets.outreach.reminders import in_risk_bands
from pipelines.definitions import CUSTOMERS_JOB, REPORTS_JOB, shop_job
from pipelines.settings import ValueSettings
from reports.prediction import WORDS, prediction_section
from tests.conftest import ingest, shop, table

# Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW in weeks, rounded estimates
FHL = (0.243, 4.414, 0.793, 2.426)


def to_3_digits(published: float) -> dict:
    """pytest.approx's tolerance for agreeing to 3 significant digits: half a unit of the third."""
    return {"expected": published, "abs": 0.5 * 10 ** (np.floor(np.log10(published)) - 2)}


def test_bgnbd_expected_purchases_match_fader_hardie_lee():
    expected = bgnbd_expected(FHL, [1, 3, 32, 78])
    for value, published in zip(expected, [0.0533, 0.1509, 1.045, 1.861], strict=True):
        assert value == pytest.approx(**to_3_digits(published))


def test_bgnbd_conditional_expectation_matches_fader_hardie_lee():
    customer = Customers([2], [30.43], [38.86])
    assert bgnbd_conditional(FHL, customer, 39)[0] == pytest.approx(**to_3_digits(1.226))


def test_bgnbd_p_alive_by_hand():
    # x = 0: BG/NBD never lets a customer die before a repeat purchase. x = 2, t_x = 30.43, T = 38.86:
    # 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) = 1 / (1 + 0.793/3.426 * (43.274/34.844)^2.243)
    customers = Customers([0, 2], [0, 30.43], [38.86, 38.86])
    odds = 0.793 / 3.426 * (43.274 / 34.844) ** 2.243
    assert bgnbd_p_alive(FHL, customers) == pytest.approx([1.0, 1 / (1 + odds)])


def test_bgnbd_and_gammagamma_intervals_hold_simulated_parameters_in_at_least_9_runs_of_10():
    # One parameter set, 20 runs of 20,000 simulated customers: 140 intervals, each meant to hold the truth with
    # probability 95%. At least 90% (126) must (for calibrated intervals 133 on average, 126 or fewer about once
    # in 250 seeds; intervals half as wide as they should be would hold about 68% of the time).
    rng = np.random.default_rng(2005)
    purchase_truth, spend_truth = (0.5, 8.0, 0.7, 2.5), (6.0, 4.0, 15.0)
    held = []
    for _ in range(20):
        customers = simulate_bgnbd(purchase_truth, rng.uniform(26, 78, 20_000), rng)
        purchases = fit_bgnbd(customers)
        spend = fit_gammagamma(customers.x, simulate_spend(spend_truth, customers.x, rng))
        for fitted, truth in ((purchases, purchase_truth), (spend, spend_truth)):
            assert fitted.converged and fitted.issues == () and fitted.undetermined == ()  # a determined maximum
            for (name, value), true in zip(fitted.params.items(), truth, strict=True):
                low, high = fitted.intervals[name]
                held.append(low < true < high)
                # the interval is symmetric on the log scale: se(log θ) = se(θ) / θ by the delta method
                assert np.log([low, high]) == pytest.approx(
                    np.log(value) + np.array([-1.96, 1.96]) * fitted.std_errors[name] / value, rel=1e-4
                )
    assert sum(held) >= 0.9 * len(held), f"{sum(held)} of {len(held)}"


def test_a_fit_on_a_flat_ridge_says_so_and_is_not_recorded_converged():
    # Drop-out probabilities that hardly vary (Beta(1000, 3000): 0.25 for everyone) seen over 2 to 12 weeks: the
    # likelihood depends on a and b almost only through a / (a + b), so a and b run off together along a ridge.
    rng = np.random.default_rng(27)
    customers = simulate_bgnbd((0.5, 8.0, 1000.0, 3000.0), rng.uniform(2, 12, 3000), rng)
    fitted = fit_bgnbd(customers)
    assert not fitted.converged and fitted.undetermined == ("a", "b")
    assert any(issue.startswith("a, b run to a bound") for issue in fitted.issues)
    # the ridge, by hand: a and b grown by one factor barely change the likelihood (less than the 1.92 a 95%
    # likelihood-ratio interval allows, even eightfold), where r grown by half costs far more
    distinct, weight = customers.distinct()
    r, alpha, a, b = fitted.params.values()

    def drop(params):
        return fitted.log_likelihood - (bgnbd_log_likelihood(params, distinct) * weight).sum()

    assert drop((r, alpha, a * 8, b * 8)) < 1.92 < drop((r * 1.5, alpha, a, b))


def test_the_holdout_judgement_prefers_the_rule_when_the_fit_is_undetermined():
    end = date(2024, 9, 2)
    row = {"calibration_end_date": end, "holdout_days": 120, "customers": 100, "buyers": 40, "mae_purchases": 0.5,
           "expected_purchases": 40.0, "actual_purchases": 40.0, "flagged_customers": 10,
           "flagged_bought_again_share": 0.1, "non_returners_flagged_share": 0.2}  # fmt: skip
    weekly = pl.DataFrame({"week_start_date": [end], "actual_purchases": [1.0], "expected_purchases": [1.0]})

    def trust(undetermined: str | None, language: str = "en") -> str:
        quality = pl.DataFrame([
            {"method": "rule", **row, "auc_buys_again": 0.6, "undetermined_params": None},
            {"method": "model", **row, "auc_buys_again": 0.8, "undetermined_params": undetermined},
        ])  # fmt: skip
        return prediction_section(language, "bgnbd", 120, quality, weekly)["trust"]

    assert trust(None).startswith("Trust the model")  # the better AUC wins when the fit is determined
    assert trust("a, b") == WORDS["en"]["trust_rule_undetermined"].format(params="a, b")
    assert "a, b" in trust("a, b", "zh") and trust("a, b", "zh").startswith("建议采信规则")


def test_paretonbd_conditional_expectation_agrees_with_its_own_likelihood():
    # Independent check of the Pareto/NBD formulas: for a customer seen from time 0 to T, E[X(t)] over the
    # population equals the conditional expectation of a new customer (x = 0, t_x = 0, T = 0).
    params = (0.55, 10.6, 0.61, 11.7)
    new = Customers([0.0], [0.0], [0.0])
    assert paretonbd_conditional(params, new, 39)[0] == pytest.approx(paretonbd_expected(params, 39), rel=1e-9)
    # a customer who bought at T is certainly alive: their likelihood is the alive term alone
    at_end = Customers([3.0], [20.0], [20.0])
    r, alpha, s, beta = params
    alive = gammaln(r + 3) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive += -(r + 3) * np.log(alpha + 20) - s * np.log(beta + 20)
    assert paretonbd_log_likelihood(params, at_end)[0] == pytest.approx(alive)


def test_paretonbd_matches_an_independent_implementation():
    # Values printed by lifetimes 0.11.3 (its own formulas, installed for the benchmark only) for Fader & Hardie's
    # CDNOW Pareto/NBD estimates and four customers (x, t_x, T) in weeks.
    params = (0.55, 10.58, 0.61, 11.67)
    customers = Customers([0, 2, 5, 10], [0, 30.4, 20, 70], [38.9, 38.9, 60, 77])
    assert paretonbd_p_alive(params, customers) == pytest.approx([0.29353994, 0.86716444, 0.05761421, 0.92360333])
    assert paretonbd_conditional(params, customers, 39) == pytest.approx(
        [0.10566815, 1.4472909, 0.15373161, 3.86434768]
    )
    assert paretonbd_expected(params, [1, 39]) == pytest.approx([0.05068542, 1.20235236])


def test_models_stay_finite_for_heavy_buyers_with_long_histories():
    customers = Customers([5000.0, 300.0], [3650.0, 10.0], [3660.0, 3660.0])
    assert np.isfinite(bgnbd_conditional((0.5, 8.0, 0.7, 2.5), customers, 365)).all()
    assert np.isfinite(paretonbd_log_likelihood((0.5, 8.0, 0.7, 12.0), customers)).all()


def test_paretonbd_likelihood_of_customers_sharing_x_and_times_is_each_ones_own():
    # The hypergeometric terms are computed once per distinct (x, t_x) and (x, T): customers sharing them must
    # get the likelihood each gets alone.
    params = (0.55, 10.6, 0.61, 11.7)
    together = Customers([0, 2, 2, 2, 5, 0], [0, 10, 10, 30, 10, 0], [40, 40, 60, 40, 60, 60])
    alone = [paretonbd_log_likelihood(params, together.take(np.array([i])))[0] for i in range(6)]
    assert paretonbd_log_likelihood(params, together) == pytest.approx(alone, rel=1e-12)
    assert paretonbd_p_alive(params, together) == pytest.approx(
        [paretonbd_p_alive(params, together.take(np.array([i])))[0] for i in range(6)], rel=1e-12
    )


def test_gammagamma_refuses_a_shop_whose_spend_has_no_finite_mean():
    # q <= 1: the population's mean spend per purchase, p v / (q - 1), is infinite (and negative as a formula)
    rng = np.random.default_rng(7)
    x = rng.integers(1, 6, 3000).astype(float)
    with pytest.raises(FitError, match=r"q = 0\.\d+, at most 1: spend per purchase has no finite mean"):
        fit_gammagamma(x, simulate_spend((6.0, 0.7, 15.0), x, rng))
    assert fit_gammagamma(x, simulate_spend((6.0, 4.0, 15.0), x, rng)).params["q"] > 1


def test_gammagamma_likelihood_is_the_gamma_mixture_integrated_numerically():
    # Mean spend m of x purchases ~ Gamma(shape p x, rate x nu), nu ~ Gamma(shape q, rate v): integrate over nu.
    p, q, v = 6.0, 4.0, 15.0
    x, m = np.array([1.0, 3.0, 3.0, 10.0]), np.array([2.5, 4.0, 1.2, 3.3])

    def one(x, m):
        def density(nu):
            return stats.gamma.pdf(m, p * x, scale=1 / (x * nu)) * stats.gamma.pdf(nu, q, scale=1 / v)

        return np.log(integrate.quad(density, 0, np.inf, epsabs=0, epsrel=1e-12)[0])

    expected = sum(one(*pair) for pair in zip(x, m, strict=True))
    assert gammagamma_log_likelihood(x, m)((p, q, v)) == pytest.approx(expected, rel=1e-9)


def facts(rows: list[tuple[str, int, int, int, float]], as_of=date(2024, 12, 31)) -> pl.DataFrame:
    """(customer, purchase days, tenure days, recency days, net revenue) -> the facts the models read."""
    return pl.DataFrame(
        rows, schema=["customer_id", "purchase_days", "tenure_days", "recency_days", "net_revenue"], orient="row"
    ).with_columns(as_of_date=pl.lit(as_of))


def test_too_few_repeat_buyers_is_a_clear_failure():
    few = facts([("a", 2, 100, 10, 50.0), ("b", 1, 30, 30, 10.0)])
    with pytest.raises(FitError, match="1 customers bought on more than one day; the models need at least 20"):
        fit(few, ValueSettings())


def test_customer_value_on_simulated_facts():
    rng = np.random.default_rng(7)
    customers = simulate_bgnbd((0.5, 40.0, 0.7, 2.5), rng.integers(30, 700, 3000).astype(float), rng)
    t_x = np.ceil(customers.t_x).clip(max=customers.T)
    spend = simulate_spend((6.0, 4.0, 15.0), customers.x + 1, rng) * (customers.x + 1)
    shop = facts([
        (f"c{n}", int(x) + 1, int(T), int(T - t), float(s))
        for n, (x, t, T, s) in enumerate(zip(customers.x, t_x, customers.T, spend, strict=True))
    ])  # fmt: skip
    settings = ValueSettings(annual_discount_rate=0.0)
    fits = fit(shop, settings)
    value = customer_value(shop, fits, settings)
    assert value.height == shop.height
    # without discounting, 12-month value = expected purchases in 365 days x expected spend per purchase
    assert value["predicted_value_12m"].to_numpy() == pytest.approx(
        (value["expected_purchases_365d"] * value["expected_spend_per_purchase"]).to_numpy(), rel=1e-9
    )
    assert (value["expected_purchases_30d"] <= value["expected_purchases_90d"]).all()
    # Gamma-Gamma's E[spend | x purchases of mean m] = p (v + x m) / (p x + q - 1), one-time buyers too
    p, q, v = fits.spend.params.values()
    both = shop.join(value, on="customer_id").filter(pl.col("purchase_days").is_in([1, 3]))
    x, m = both["purchase_days"], both["net_revenue"] / both["purchase_days"]
    assert both["expected_spend_per_purchase"].to_numpy() == pytest.approx(
        (p * (v + x * m) / (p * x + q - 1)).to_numpy()
    )
    bands = value.select(
        band=pl.when(pl.col("p_alive") < 0.3).then(pl.lit("high")).when(pl.col("p_alive") < 0.7).then(pl.lit("medium"))
    )["band"].fill_null("low")
    assert value["risk_band"].equals(bands, check_names=False)
    # the expected next purchase date is the first day the expected purchases reach one
    due = value.filter(pl.col("expected_next_date").is_not_null()).head(20)
    assert due.height > 0
    shop_due = shop.join(due.select("customer_id", "expected_next_date"), on="customer_id", how="semi")
    sub, _, _ = model_inputs(shop_due, "days")
    days = (due["expected_next_date"] - due["as_of_date"]).dt.total_days().to_numpy().astype(float)
    params = list(fits.purchases.params.values())
    assert (bgnbd_conditional(params, sub, days) >= 1).all()
    assert (bgnbd_conditional(params, sub, days - 1) < 1).all()
    assert value.filter(pl.col("expected_next_date").is_null())["expected_purchases_365d"].max() < 1


def high_value_at_risk(settings) -> dict[str, set[str]]:
    """The customers tagged high_value_at_risk in core.rfm and in core.customer_value."""
    return {
        name: set(table(settings, name).filter(pl.col("tags").str.contains("high_value_at_risk"))["customer_id"])
        for name in ("core.rfm", "core.customer_value")
    }


def test_customer_value_and_fits_are_written_once_per_fit_date(tmp_path):
    settings = shop(tmp_path, value={"holdout_days": 120, "min_repeat_buyers": 10})
    ingest(settings, "2024-01-01", "2024-12-31")
    job = shop_job(settings, CUSTOMERS_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        assert job.execute_in_process(instance=instance).success
        first_run_tags = high_value_at_risk(settings)
        with duckdb.connect(str(settings.warehouse)) as conn:  # as a warehouse from before intervals were kept
            conn.execute("ALTER TABLE core.model_fits DROP COLUMN intervals")
        result = job.execute_in_process(instance=instance)  # the same day again: its fits replaced, not added
        assert result.success
    checks = result.get_asset_check_evaluations()
    assert any(c.check_name == "model_fitted" and c.passed for c in checks)
    facts, value = table(settings, "core.customer_facts"), table(settings, "core.customer_value")
    assert value["customer_id"].sort().equals(facts["customer_id"].sort())
    fits = table(settings, "core.model_fits")
    assert fits.select("fit_date", "model").rows() == [
        (date(2024, 12, 31), "bgnbd"),
        (date(2024, 12, 31), "gammagamma"),
    ]
    # core.rfm's targeting tags carry high_value_at_risk as core.customer_value does: on the shop's first run by
    # the fit of the same facts, on the second by the first run's fit of the same day
    assert first_run_tags["core.rfm"] and first_run_tags["core.rfm"] == first_run_tags["core.customer_value"]
    assert high_value_at_risk(settings) == first_run_tags
    # the stored parameters are the ones a fit on the stored facts gives
    refitted = fit(facts, settings.value).purchases
    assert json.loads(fits["params"][0]) == pytest.approx(refitted.params)
    assert json.loads(fits["issues"][0]) == list(refitted.issues) and fits["converged"][0] == refitted.converged
    stored = json.loads(fits["intervals"][0])
    assert np.ravel([stored[name] for name in refitted.intervals]) == pytest.approx(
        np.ravel([*refitted.intervals.values()])
    )
    quality = table(settings, "analysis.prediction_quality")
    assert sorted(quality["method"]) == ["model", "rule"]
    assert quality["calibration_end_date"].unique().to_list() == [date(2024, 9, 2)]
    weekly = table(settings, "analysis.prediction_tracking")
    # every repeat purchase day of the customers who bought by the calibration date, each in one week
    calibration_customers = facts.filter(pl.col("first_order_date") <= date(2024, 9, 2))
    assert weekly["actual_purchases"].sum() == (calibration_customers["purchase_days"] - 1).sum()
    assert weekly.filter("holdout")["week_start_date"].min() > date(2024, 9, 2)
    # the overview says it in words, with the table's figures and the tracking chart
    with dg.DagsterInstance.ephemeral() as instance:
        assert shop_job(settings, REPORTS_JOB).execute_in_process(instance=instance).success
    html = (settings.output / "reports" / "overview-2024-12-31.en.html").read_text(encoding="utf-8")
    rule, model = (quality.filter(pl.col("method") == method).row(0, named=True) for method in ("rule", "model"))
    assert "Who buys again: the rule and the model on the last 120 days" in html
    called = "the rule called churned (the stage: beyond 2 cycles or a year)"
    assert f"Of the {rule['flagged_customers']:,} customers {called}, " in html
    assert f"{rule['flagged_bought_again_share']:.0%} bought again" in html
    for row in (rule, model):
        assert f'<td class="n">{row["auc_buys_again"]:.2f}</td>' in html
        assert f'<td class="n">{row["mae_purchases"]:.2f}</td>' in html
    winner = "model" if model["auc_buys_again"] > rule["auc_buys_again"] else "rule"
    assert f"Trust the {winner}" in html
    section = html.split("Who buys again: the rule and the model")[1].split("<h2>")[0]
    assert section.count("<svg") == 1  # the tracking chart


def test_a_shop_too_young_for_the_models_keeps_its_other_work(tmp_path):
    settings = shop(tmp_path, value={"min_repeat_buyers": 100_000})
    ingest(settings, "2024-11-01", "2024-12-31")
    with dg.DagsterInstance.ephemeral() as instance:
        result = shop_job(settings, CUSTOMERS_JOB).execute_in_process(instance=instance)
    assert result.success
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "model_fitted"]
    assert not check.passed and "the models need at least 100000 (value.min_repeat_buyers)" in check.description
    assert table(settings, "core.customer_value").is_empty()
    assert table(settings, "analysis.prediction_quality").is_empty()
    # what `regulars run` prints of the hold-out test says whose repeat buyers it counted: the orders before the
    # hold-out, not the shop's (it read "0 customers bought on more than one day" where most had)
    quality = next(e.materialization for e in result.get_asset_materialization_events()
                   if e.asset_key.path[1:] == ["analysis", "prediction_quality"])  # fmt: skip
    assert quality.metadata["not_fitted"].value.startswith(
        "no fit on the orders before the hold-out's 180 days (value.holdout_days): "
    )
    with dg.DagsterInstance.ephemeral() as instance:
        assert shop_job(settings, REPORTS_JOB).execute_in_process(instance=instance).success
    html = (settings.output / "reports" / "overview-2024-12-31.en.html").read_text(encoding="utf-8")
    assert "The model could not be fitted on the history before the last 180 days" in html


def test_holdout_quality_on_a_hand_made_shop():
    # As of 31 December with 60 days held out: calibration ends 1 November. Stages then, by hand (all tea; the
    # typical cycle of repeat buyers is the median of 10, 20, 30, 10, 45 = 20 days):
    #   a  cycle 10, 31 days since   -> churned; buys once in the hold-out
    #   b  cycle 20, 11 days         -> active (due from 18); buys twice
    #   c  cycle 30, 123 days        -> churned; none
    #   d  cycle 10, 2 days          -> active; none
    #   e  cycle 45, 47 days         -> due (40.5 to 67.5); buys once
    #   f  one order, 7 days (20)    -> new; none
    #   g  one order, 184 days (20)  -> churned; none
    def days(*days: str) -> list[date]:
        return [date.fromisoformat(f"2024-{d}") for d in days]

    bought = {
        "a": days("09-01", "09-11", "09-21", "10-01", "11-15"), "b": days("10-01", "10-21", "11-10", "12-01"),
        "c": days("06-01", "07-01"), "d": days("10-20", "10-30"), "e": days("08-01", "09-15", "12-20"),
        "f": days("10-25"), "g": days("05-01"),
    }  # fmt: skip
    rows = [(customer, day, 10.0 + n) for customer, days_ in bought.items() for n, day in enumerate(days_)]
    orders = pl.DataFrame(
        [{"order_id": f"O{n}", "customer_id": c, "order_ts": datetime.combine(d, time(12)), "order_date": d,
          "amount": amount, "items": 1, "channel": "app", "region": "Zhejiang", "category": "tea",
          "status": "completed"} for n, (c, d, amount) in enumerate(rows)]
    )  # fmt: skip
    settings = shop(Path("unused"), value={"holdout_days": 60, "min_repeat_buyers": 2})
    scores, fits, calibration_end = holdout_scores(orders, date(2024, 12, 31), settings)
    assert calibration_end == date(2024, 11, 1)
    table = {row["method"]: row for row in quality(scores, calibration_end, 60, fits).iter_rows(named=True)}
    rule = table["rule"]
    # positives a (churned), b, e; negatives c, g (churned), d, f. Pairs won: a 2 ties = 1, b and e 2 + 2 ties = 3.
    assert rule["auc_buys_again"] == pytest.approx(7 / 12)
    # expected 60 / cycle when not churned: b 3, d 6, e 1.333, f 3; actual a 1, b 2, e 1
    assert rule["mae_purchases"] == pytest.approx((1 + 1 + 6 + 1 / 3 + 3) / 7)
    assert (rule["expected_purchases"], rule["actual_purchases"]) == (pytest.approx(3 + 6 + 60 / 45 + 3), 4.0)
    # churned a, c, g: one of three bought again; they hold c and g of the non-returners c, d, f, g
    assert (rule["flagged_bought_again_share"], rule["non_returners_flagged_share"]) == (pytest.approx(1 / 3), 0.5)
    # the model's AUC by counting every (buyer, non-buyer) pair, and its error, from its own expectations
    expected = dict(zip(scores["customer_id"], scores["model_expected"], strict=True))
    buyers, others = ["a", "b", "e"], ["c", "d", "f", "g"]
    won = sum(1.0 if expected[p] > expected[n] else 0.5 if expected[p] == expected[n] else 0.0
              for p in buyers for n in others)  # fmt: skip
    actual = {"a": 1, "b": 2, "e": 1}
    model = table["model"]
    assert model["auc_buys_again"] == pytest.approx(won / 12)
    assert model["mae_purchases"] == pytest.approx(sum(abs(expected[c] - actual.get(c, 0)) for c in bought) / 7)
    assert model["flagged_customers"] == 0  # a tenth of 7 customers rounds down to nobody
    # seven customers do not determine four parameters: the quality table says which the fit leaves open
    assert fits.purchases.undetermined and model["undetermined_params"] == ", ".join(fits.purchases.undetermined)
    assert rule["undetermined_params"] is None


def test_the_prediction_section_has_every_word_in_every_language():
    assert WORDS["en"].keys() == WORDS["zh"].keys()


def test_reminders_and_win_back_lists_may_keep_only_some_risk_bands_by_the_latest_fit():
    # Fader, Hardie & Lee's parameters in weeks. P(alive) by hand, for x > 0:
    # 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)); 1 for x = 0.
    r, alpha, a, b = FHL
    facts = pl.DataFrame({  # A and B: 3 purchase days over 39 weeks, last at week 30 or 5; C: one purchase
        "customer_id": ["A", "B", "C"], "purchase_days": [3, 3, 1], "tenure_days": [273, 273, 100],
        "recency_days": [63, 238, 100], "net_revenue": [30.0, 30.0, 10.0],
    })  # fmt: skip
    p_alive = {c: 1 / (1 + a / (b + 1) * ((alpha + 39) / (alpha + t_x)) ** (r + 2)) for c, t_x in (("A", 30), ("B", 5))}
    assert p_alive["A"] == pytest.approx(0.7195, abs=1e-4) and p_alive["B"] == pytest.approx(0.1229, abs=1e-4)
    rfm = facts.select("customer_id", stage=pl.lit("due"))
    fits = pl.DataFrame({
        "fit_date": [date(2024, 6, 1)] * 2, "model": ["bgnbd", "gammagamma"], "unit": ["weeks"] * 2,
        "params": [json.dumps(dict(zip(("r", "alpha", "a", "b"), FHL, strict=True))), json.dumps({"p": 1.0})],
    })  # fmt: skip
    # bands at 0.3 and 0.7: A low, B high, C (x = 0) low
    settings, skip_high = ValueSettings(), ["low", "medium"]
    assert in_risk_bands(facts, rfm, fits, date(2024, 6, 2), skip_high, settings)["customer_id"].to_list() == ["A", "C"]
    assert in_risk_bands(facts, rfm, fits, date(2024, 6, 2), ["high"], settings)["customer_id"].to_list() == ["B"]
    assert in_risk_bands(facts, rfm, fits, date(2024, 5, 31), skip_high, settings).equals(rfm)  # no fit that old
    assert in_risk_bands(facts, rfm, fits, date(2024, 6, 2), ["low", "medium", "high"], settings).equals(rfm)


def test_the_targeting_tags_mark_top_spenders_at_high_risk_by_the_latest_fit():
    # P(alive) with Fader, Hardie & Lee's weekly parameters, as in the test above: A (last purchase at week 30 of
    # 39) 0.7195, low risk; B and D (week 5) 0.1229, high; C (one purchase) 1, low. The top half by net spend is
    # A and B (2 of 4): only B is both.
    facts = pl.DataFrame({
        "customer_id": ["A", "B", "C", "D"], "purchase_days": [3, 3, 1, 3], "tenure_days": [273, 273, 100, 273],
        "recency_days": [63, 238, 100, 238], "net_revenue": [100.0, 80.0, 10.0, 20.0],
    })  # fmt: skip
    rfm = facts.select("customer_id", tags=pl.lit("lost;at_risk"))
    fits = pl.DataFrame({
        "fit_date": [date(2024, 6, 1), date(2024, 6, 1), date(2024, 7, 1)], "model": ["bgnbd", "gammagamma", "bgnbd"],
        "unit": ["weeks", "weeks", "weeks"],
        "params": [json.dumps(dict(zip(("r", "alpha", "a", "b"), FHL, strict=True))), json.dumps({"p": 1.0}),
                   json.dumps({"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0})],
    })  # fmt: skip
    settings = ValueSettings(high_value_share=0.5)
    fit_then = latest_fit(fits, date(2024, 6, 30))
    assert fit_then["fit_date"] == date(2024, 6, 1) and fit_then["model"] == "bgnbd"
    assert with_value_tags(facts, rfm, fit_then, settings)["tags"].to_list() == [
        "lost;at_risk", "lost;at_risk;high_value_at_risk", "lost;at_risk", "lost;at_risk",
    ]  # fmt: skip
    assert latest_fit(fits, date(2024, 5, 31)) is None  # before the first fit: the tags stay as they are
    assert with_value_tags(facts, rfm, None, settings).equals(rfm)


@pytest.mark.parametrize("seed", range(5))
def test_top_spenders_tied_at_the_cut_are_taken_in_customer_id_order_whatever_the_row_order(seed):
    # 10 customers, top 30% = 3: E (50) is in; B, D, H and J share 20, and B and D, first by id, fill the rest.
    facts = pl.DataFrame({
        "customer_id": list("ABCDEFGHIJ"),
        "net_revenue": [10.0, 20.0, 5.0, 20.0, 50.0, 1.0, 2.0, 20.0, 3.0, 20.0],
    }).sample(fraction=1.0, shuffle=True, seed=seed)  # fmt: skip
    chosen = facts.filter(top_spend(facts, ValueSettings(high_value_share=0.3)))["customer_id"]
    assert sorted(chosen) == ["B", "D", "E"]
