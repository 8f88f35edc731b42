"""Planning bands for an event's goals: what is likely, not one number. Plain numpy and Polars, no Dagster.

By simulation, not a closed form: an event's figures are sums over thousands of customers who differ in rate,
drop-out and spend, times parameters the fit knows only within their errors, and revenue is skewed (Gamma
spend); the quantiles of such a sum have no closed form, and a normal approximation would miss revenue's skew.
The default 200 draws of a shop of 16,000 customers take about 1.5 s.

Each draw takes parameters of the purchase model (BG/NBD or Pareto/NBD) and of Gamma-Gamma from the normal
that the fit's information matrix gives their logs (the likelihood's curvature at the fit, computed from the
models' public likelihoods; the parameters are correlated, so their standard errors alone would not do), then
for every customer known at the baseline: alive or not (P(alive) under those parameters), a purchase rate
from its posterior Gamma(r + x, alpha + T) (with Poisson purchases: negative binomial), drop-out (BG/NBD: a
probability from Beta(a, b + x), tried after each purchase; Pareto/NBD: a lifetime from Gamma(s, beta + T)), the
purchases in the selling window, and spend per purchase from Gamma-Gamma's posterior of the customer's mean.
New buyers come from no fitted model: their count is Poisson around the goal and their spend Gamma-Gamma's for a
customer without history. The outreach adds the uncertainty of the uplift the shop's past lists measured:
contacted customers times an uplift drawn from the normal of its 95% interval, centred on nought (the comparable
event's lists are in the goal already).

An event's sales are not a quiet stretch: the purchase rate in the window is the model's times an event lift
that makes the expected returning buyers equal the goal, and each count's and revenue's draws are then scaled
so that their mean is the goal (order value follows as their revenue per order, in the ratio its goal bears to
the revenue goal over the orders goal). The band is centred on the goal and takes its width from the models: it
says how far an event planned as the goal says may land by chance, not whether the goal's growth factors are
right.
"""

import json
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import optimize, special

from assets.customers.models import (
    COUNT_MODELS,
    Customers,
    Fit,
    bgnbd_log_likelihood,
    gammagamma_log_likelihood,
    paretonbd_log_likelihood,
)
from assets.outreach.uplift import uplift

BANDED = ("new_buyers", "returning_buyers", "buyers", "revenue_new", "revenue_returning", "revenue", "orders",
          "average_order_value")  # fmt: skip
TOTALS = {"buyers": ("new_buyers", "returning_buyers"), "revenue": ("revenue_new", "revenue_returning")}
LOG_LIKELIHOODS = {"bgnbd": bgnbd_log_likelihood, "paretonbd": paretonbd_log_likelihood}
Z_95 = special.ndtri(0.975)


@dataclass(frozen=True)
class Shop:
    """The customers known at a baseline, as the models read them (`assets.customers.value.model_inputs`):
    repeat purchases, last purchase and age in the fit's unit, purchase count and mean spend per purchase."""

    customers: Customers
    purchases: np.ndarray
    spend: np.ndarray


@dataclass(frozen=True)
class ListUplift:
    """The uplift past lists measured, pooled, per contacted customer: buyers, revenue and orders, each with its
    95% interval; and how many customers this event's lists contact."""

    contacted: int
    buyers: tuple[float, float, float]  # uplift, low, high
    revenue: tuple[float, float, float]
    orders: tuple[float, float, float]


def parameter_draws(fit: Fit, total_log_likelihood, draws: int, rng: np.random.Generator) -> np.ndarray:
    """`draws` parameter vectors from the normal of the log-parameters the fit's information matrix gives (the
    fit's own values only, when the matrix is not positive definite: the data do not pin the parameters)."""
    at = np.log(list(fit.params.values()))

    def objective(log_params):
        return -total_log_likelihood(np.exp(log_params))

    information = _hessian(objective, at)
    try:
        covariance = np.linalg.inv(information)
        np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        return np.tile(np.exp(at), (draws, 1))
    return np.exp(rng.multivariate_normal(at, covariance, size=draws))


def _hessian(objective, at: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central differences, as the fit computes its standard errors."""
    n = len(at)
    steps = np.eye(n) * h
    hessian = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = steps[i], steps[j]
            hessian[i, j] = hessian[j, i] = (
                objective(at + ei + ej) - objective(at + ei - ej) - objective(at - ei + ej) + objective(at - ei - ej)
            ) / (4 * h * h)
    return hessian


def purchase_likelihood(model: str, shop: Shop):
    """The purchase model's total log-likelihood over the shop's customers, as a function of its parameters."""
    distinct, weight = shop.customers.distinct()
    return lambda params: float((LOG_LIKELIHOODS[model](params, distinct) * weight).sum())


def spend_likelihood(shop: Shop):
    """Gamma-Gamma's total log-likelihood over the repeat buyers with a positive spend (those it is fitted on)."""
    keep = (shop.purchases > 1) & (shop.spend > 0)
    return gammagamma_log_likelihood(shop.purchases[keep], shop.spend[keep])


def event_lift(model: str, params: np.ndarray, customers: Customers, t: float, returning_goal: float) -> float:
    """The factor on every purchase rate in a window of `t` units that makes the expected buyers among
    `customers` equal `returning_goal`: P(alive) x P(a purchase in t | alive) = 1 - ((alpha + T) / (alpha + T +
    lift t))^(r + x) summed (drop-out inside the window left out); as high as 1e4 when even that falls short."""
    r, alpha = params[0], params[1]
    alive = COUNT_MODELS[model].p_alive(params, customers)

    def expected(log_lift):
        age = alpha + customers.T
        none_bought = (r + customers.x) * np.log(age / (age + np.exp(log_lift) * t))
        return float((alive * -np.expm1(none_bought)).sum())

    low, high = np.log(1e-4), np.log(1e4)
    if returning_goal <= expected(low):
        return 1e-4
    if returning_goal >= expected(high):
        return 1e4
    return float(np.exp(optimize.brentq(lambda v: expected(v) - returning_goal, low, high, xtol=1e-6)))


def simulate_returning(
    model: str, purchase_params: np.ndarray, spend_params: np.ndarray, shop: Shop, t: float, lift: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Buyers, purchases and revenue among the shop's customers in the next `t` units, one value per row of
    `purchase_params` (with the matching row of `spend_params`); purchase rates times `lift`."""
    c, n = shop.customers, len(shop.customers.x)
    spend = np.maximum(np.nan_to_num(shop.spend), 0)
    buyers, purchases, revenue = (np.empty(len(purchase_params)) for _ in range(3))
    for d, (params, (p, q, v)) in enumerate(zip(purchase_params, spend_params, strict=True)):
        alive = np.flatnonzero(rng.random(n) < COUNT_MODELS[model].p_alive(params, c))  # the rest buy nothing
        x, T = c.x[alive], c.T[alive]
        if model == "bgnbd":
            # Poisson purchases at a Gamma(r + x, alpha + T) rate: negative binomial; drop-out after a purchase,
            # with a probability from its posterior Beta(a, b + x), stops those who would buy twice or more
            bought = rng.negative_binomial(params[0] + x, (params[1] + T) / (params[1] + T + lift * t))
            again = np.flatnonzero(bought > 1)
            drop = np.maximum(rng.beta(params[2], params[3] + x[again]), 1e-12)
            bought[again] = np.minimum(bought[again], rng.geometric(drop))
        else:  # a lifetime from the posterior of the death rate
            rate = rng.gamma(params[0] + x, 1 / (params[1] + T)) * lift
            lifetime = rng.exponential(1 / rng.gamma(params[2], 1 / (params[3] + T)))
            bought = rng.poisson(rate * np.minimum(t, lifetime))
        who = alive[bought > 0]
        count, paid = shop.purchases[who], spend[who]
        mean_spend_rate = rng.gamma(p * count + q, 1 / (v + count * paid))  # nu | history
        spent = rng.gamma(bought[bought > 0] * p, 1 / mean_spend_rate)
        buyers[d], purchases[d], revenue[d] = len(who), bought.sum(), spent.sum()
    return {"buyers": buyers, "purchases": purchases, "revenue": revenue}


def simulate_new(spend_params: np.ndarray, expected_buyers: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """New buyers (Poisson around `expected_buyers`) and their revenue, one purchase each at Gamma-Gamma's spend
    for a customer without history: a mean from Gamma(q, v), a purchase from Gamma(p, that mean's rate)."""
    buyers = rng.poisson(max(expected_buyers, 0.0), len(spend_params)).astype(float)
    revenue = np.array([
        rng.gamma(p, 1 / rng.gamma(q, 1 / v, int(k))).sum() if k else 0.0
        for k, (p, q, v) in zip(buyers, spend_params, strict=True)
    ])  # fmt: skip
    return {"buyers": buyers, "revenue": revenue}


def band(draws: np.ndarray, quantiles: tuple[float, float]) -> tuple[float, float]:
    """The draws' quantiles as a band for one more draw: the order statistics at q (n + 1) (numpy's "weibull"),
    between which a further draw falls with probability high - low (exactly when q (n + 1) is whole, as with 99
    draws); numpy's default, at q (n - 1) + 1, gives (high - low) (n - 1) / (n + 1): 79.2% for 10-90 and 200."""
    low, high = np.quantile(draws, quantiles, method="weibull")
    return float(low), float(high)


def planning_bands(
    goals: dict[str, float], shop: Shop, purchase_fit: Fit, spend_fit: Fit, window_units: float,
    uplift: ListUplift | None, quantiles: tuple[float, float], draws: int, seed: int = 0,
) -> dict[str, tuple[float, float]]:  # fmt: skip
    """measure -> (low, high) for each of BANDED the goals have: see the module's docstring."""
    rng = np.random.default_rng(seed)
    model = purchase_fit.model
    for total, parts in TOTALS.items():
        if goals.get(total) is None and all(goals.get(p) is not None for p in parts):
            goals = goals | {total: sum(goals[p] for p in parts)}
    purchase_params = parameter_draws(purchase_fit, purchase_likelihood(model, shop), draws, rng)
    spend_params = parameter_draws(spend_fit, spend_likelihood(shop), draws, rng)
    fitted = np.array(list(purchase_fit.params.values()))
    returning = goals.get("returning_buyers")
    lift = 1.0 if returning is None else event_lift(model, fitted, shop.customers, window_units, returning)
    old = simulate_returning(model, purchase_params, spend_params, shop, window_units, lift, rng)
    new = simulate_new(spend_params, goals.get("new_buyers", 0.0), rng)
    # the orders goal's orders per buyer carries over to the draws' purchases and new buyers' first orders
    figures = {
        "new_buyers": new["buyers"], "returning_buyers": old["buyers"], "revenue_new": new["revenue"],
        "revenue_returning": old["revenue"], "orders": old["purchases"] + new["buyers"],
    }  # fmt: skip
    figures = {m: scale_to(values, goals.get(m)) for m, values in figures.items()}
    if uplift is not None and uplift.contacted:
        for measure, (mean, low, high) in (("returning_buyers", uplift.buyers), ("revenue_returning", uplift.revenue),
                                           ("orders", uplift.orders)):  # fmt: skip
            if None not in (mean, low, high):
                change = uplift.contacted * rng.normal(0, (high - low) / (2 * Z_95), draws)
                figures[measure] = np.maximum(figures[measure] + change, 0)
    figures["buyers"] = figures["new_buyers"] + figures["returning_buyers"]
    figures["revenue"] = figures["revenue_new"] + figures["revenue_returning"]
    # the order-value goal is not the revenue goal over the orders goal (new and returning buyers' spend grow
    # apart): the draws' revenue per order takes the same ratio to it
    per_order = [goals.get(m) for m in ("average_order_value", "revenue", "orders")]
    mix = per_order[0] / (per_order[1] / per_order[2]) if all(per_order) else 1.0
    figures["average_order_value"] = figures["revenue"] / np.maximum(figures["orders"], 1) * mix
    return {m: band(figures[m], quantiles) for m in BANDED if goals.get(m) is not None}


def scale_to(draws: np.ndarray, goal: float | None) -> np.ndarray:
    """Draws scaled so that their mean is the goal (as they are without one, or when their mean is nought)."""
    mean = draws.mean()
    return draws * (goal / mean) if goal is not None and mean > 0 else draws


def with_bands(
    goals: pl.DataFrame, bands: dict[str, tuple[float, float]], quantiles: tuple[float, float]
) -> pl.DataFrame:
    """`campaigns.goals` with each shop-wide measure's band (`band_low`, `band_high`, null where none) and the
    quantiles it spans (`band_quantiles`, a JSON pair); buyers and revenue, which the goals set as their parts,
    get a row of their own (the parts' sum) to carry their band."""
    shop_wide = goals.filter(pl.col("rfm_class").is_null() & pl.col("goal").is_not_null())
    set_as = dict(shop_wide.select("measure", "goal").rows())
    totals = [
        shop_wide.filter(pl.col("measure") == parts[0]).with_columns(
            measure=pl.lit(total),
            goal=pl.lit(round(sum(set_as[p] for p in parts), 2)),
            comparable_actual=pl.lit(None, pl.Float64),
            formula=pl.lit(" + ".join(f"{p} goal" for p in parts)),
        )  # fmt: skip
        for total, parts in TOTALS.items()
        if total in bands and total not in set_as and all(p in set_as for p in parts)
    ]
    goals = pl.concat([goals, *totals])
    shop_wide = pl.col("rfm_class").is_null()
    low = pl.col("measure").replace_strict({m: b[0] for m, b in bands.items()}, default=None, return_dtype=pl.Float64)
    high = pl.col("measure").replace_strict({m: b[1] for m, b in bands.items()}, default=None, return_dtype=pl.Float64)
    return goals.with_columns(
        band_low=pl.when(shop_wide).then(low.round(2)),
        band_high=pl.when(shop_wide).then(high.round(2)),
        band_quantiles=pl.when(shop_wide & low.is_not_null()).then(pl.lit(json.dumps(list(quantiles)))),
    )


def list_uplift(outcomes: pl.DataFrame, contacted: int) -> ListUplift | None:
    """The uplift of earlier lists that held someone out (`outcomes`: their members, as
    assets.outreach.uplift.responses gives them), pooled, for an event whose lists contact `contacted`."""
    if outcomes.is_empty() or not outcomes["held_out"].any():
        return None
    measured = uplift(outcomes.with_columns(all=pl.lit("all")), ["all"], {}, 0.0).row(0, named=True)
    keys = {"buyers": "uplift", "revenue": "revenue_uplift", "orders": "orders_uplift"}
    triples = {name: tuple(measured[f"{key}{end}"] for end in ("", "_low", "_high")) for name, key in keys.items()}
    return ListUplift(contacted, **triples)


def band_of(goals: pl.DataFrame) -> tuple[float, float] | None:
    """The quantiles an event's planning bands span (campaigns.goals' `band_quantiles`), or None without bands."""
    if "band_quantiles" not in goals.columns:  # goals planned before bands
        return None
    quantiles = goals["band_quantiles"].drop_nulls()
    return tuple(json.loads(quantiles[0])) if len(quantiles) else None
