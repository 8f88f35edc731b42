"""Buy-till-you-die models on numpy/scipy: BG/NBD and Pareto/NBD for purchase counts, Gamma-Gamma for spend
per purchase. Plain numpy arrays, no Dagster.

A customer is (x, t_x, T): repeat purchases, time from the first purchase to the last, and time from the first
purchase to the as-of date, in one unit (days or weeks). Likelihoods are computed in log-space (no power or
hypergeometric term is ever formed outside a log), parameters are fitted as logs inside bounds, and the fits
take a weight per row: customers with the same (x, t_x, T), or the same purchases and mean spend, are one row
weighted by how many share it, so a fit costs what its distinct rows cost, however many customers they stand for.
Formulas: Fader, Hardie & Lee (2005) "Counting your customers the easy way", Fader & Hardie (2005) "A note on
deriving the Pareto/NBD model", Fader, Hardie & Lee (2005) "RFM and CLV" and Fader & Hardie (2013) "The
Gamma-Gamma model of monetary value".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
from scipy import optimize, special, stats

# bounds of every parameter, fitted as its log
LOG_BOUNDS = (np.log(1e-4), np.log(1e5))
Z_95 = special.ndtri(0.975)  # 95% intervals: 1.96 standard errors either side
# The information matrix's condition number (on the log parameters) beyond which a fit stands on a flat ridge of
# the likelihood: about 150 for BG/NBD fits that recover simulated parameters, over 1e5 for a shop whose
# drop-out hardly varies (a and b run off together).
NEAR_SINGULAR = 1e4
LIKELIHOOD_RATIO_95 = stats.chi2.ppf(0.95, 1) / 2  # 1.92: log-likelihood a 95% likelihood-ratio interval allows


class FitError(ValueError):
    """A model that cannot be fitted to this shop, with the reason."""


@dataclass(frozen=True)
class Fit:
    model: str  # "bgnbd", "paretonbd" or "gammagamma"
    params: dict[str, float]
    std_errors: dict[str, float]  # from the inverse Hessian; NaN where it is not positive definite
    intervals: dict[str, tuple[float, float]]  # 95%, on the log scale the fit works in: exp(log θ ± 1.96 se(log θ))
    log_likelihood: float
    customers: int
    converged: bool  # to a maximum the data determine: the optimizer succeeded and there are no `issues`
    issues: tuple[str, ...] = ()  # why the data do not determine the parameters: a bound, a flat ridge
    undetermined: tuple[str, ...] = ()  # the parameters the issues concern


@dataclass(frozen=True)
class Customers:
    """Repeat purchases `x`, time of the last purchase `t_x` and age `T`, all from the first purchase."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray

    def __post_init__(self) -> None:
        x, t_x, T = (np.asarray(a, dtype=float) for a in (self.x, self.t_x, self.T))
        if x.shape != t_x.shape or x.shape != T.shape:
            raise ValueError("x, t_x and T differ in length")
        if len(x) and ((x < 0).any() or (t_x < 0).any() or (t_x > T).any() or ((x == 0) & (t_x != 0)).any()):
            raise ValueError("expected x >= 0 and 0 <= t_x <= T, with t_x = 0 when x = 0")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "t_x", t_x)
        object.__setattr__(self, "T", T)

    def distinct(self) -> tuple[Customers, np.ndarray]:
        """The distinct (x, t_x, T) and how many customers share each."""
        unique, index = self.grouped()
        return unique, np.bincount(index).astype(float)

    def grouped(self) -> tuple[Customers, np.ndarray]:
        """The distinct (x, t_x, T), in order, and each customer's index into them."""
        order = np.lexsort((self.T, self.t_x, self.x))
        x, t_x, T = self.x[order], self.t_x[order], self.T[order]
        starts = (
            np.r_[True, (np.diff(x) != 0) | (np.diff(t_x) != 0) | (np.diff(T) != 0)] if len(x) else np.zeros(0, bool)
        )
        index = np.empty(len(x), dtype=np.int64)
        index[order] = np.cumsum(starts) - 1
        return Customers(x[starts], t_x[starts], T[starts]), index

    def take(self, rows: np.ndarray) -> Customers:
        return Customers(self.x[rows], self.t_x[rows], self.T[rows])

    @cached_property
    def by_x(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct values of x and each customer's index into them: terms in x alone are computed once."""
        return np.unique(self.x, return_inverse=True)

    @cached_property
    def by_x_t_x(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct (x, t_x) and each customer's index into them: far fewer than customers, even distinct ones."""
        return _pairs(self.x, self.t_x)

    @cached_property
    def by_x_T(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct (x, T) and each customer's index into them."""
        return _pairs(self.x, self.T)


def _pairs(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    unique, index = np.unique(np.stack([x, t], axis=1), axis=0, return_inverse=True)
    return unique[:, 0], unique[:, 1], index.reshape(-1)


# --- BG/NBD (parameters r, alpha, a, b) ---------------------------------------------------------------------


def bgnbd_log_likelihood(params, c: Customers) -> np.ndarray:
    """Each customer's log-likelihood (FHL 2005, eq. 6)."""
    r, alpha, a, b = params
    x, t_x, T = c.x, c.t_x, c.T
    xs, index = c.by_x
    head = special.gammaln(r + xs) + special.betaln(a, b + xs)
    head = head[index] - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    still_alive = -(r + x) * np.log(alpha + T)
    died = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return head + np.logaddexp(still_alive, died)


def bgnbd_expected(params, t) -> np.ndarray:
    """Expected purchases in (0, t] of a customer who has just made a first purchase (FHL 2005, eq. 7)."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return (a + b - 1) / (a - 1) * (1 - np.exp(r * np.log(alpha / (alpha + t))) * hyp)


def _bgnbd_log_odds_dead(params, c: Customers) -> np.ndarray:
    """log of a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) for repeat buyers, -inf for the others."""
    r, alpha, a, b = params
    ratio = np.log(a) - np.log(np.maximum(b + c.x - 1, 1e-300))
    ratio += (r + c.x) * (np.log(alpha + c.T) - np.log(alpha + c.t_x))
    return np.where(c.x > 0, ratio, -np.inf)


def bgnbd_p_alive(params, c: Customers) -> np.ndarray:
    """P(still a customer | x, t_x, T) (FHL 2005, appendix; Fader, Hardie & Lee 2008 note)."""
    return special.expit(-_bgnbd_log_odds_dead(params, c))


def bgnbd_conditional(params, c: Customers, t) -> np.ndarray:
    """Expected purchases in (T, T + t] given (x, t_x, T) (FHL 2005, eq. 10)."""
    return bgnbd_while_alive(params, c.x, c.T, t) * bgnbd_p_alive(params, c)


def bgnbd_while_alive(params, x, T, t) -> np.ndarray:
    """Expected purchases in (T, T + t] of a customer alive at T after x repeat purchases (eq. 10 without P(alive))."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    bought = 1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp
    return (a + b + x - 1) / (a - 1) * bought


# --- Pareto/NBD (parameters r, alpha, s, beta) --------------------------------------------------------------


def _paretonbd_log_a0(params, c: Customers) -> np.ndarray:
    """log A0 of Fader & Hardie's note (eq. 19/20), with 2F1(rsx, k; rsx+1; z) written by Euler's transform as
    (1-z)^(1-k) 2F1(1, rsx+1-k; rsx+1; z), which stays finite where the plain series overflows."""
    r, alpha, s, beta = params
    low, high = min(alpha, beta), max(alpha, beta)

    def log_term(x, t):  # log of 2F1(rsx, k; rsx + 1; |alpha-beta|/(high+t)) / (high+t)^rsx
        rsx, k = r + s + x, r + x if alpha < beta else s + 1
        z = (high - low) / (high + t)
        return (1 - k) * np.log1p(-z) + np.log(special.hyp2f1(1, rsx + 1 - k, rsx + 1, z)) - rsx * np.log(high + t)

    # the hypergeometric terms (nearly all of a fit's time) once per distinct (x, t_x) and (x, T)
    x_last, t_last, last = c.by_x_t_x
    x_end, T_end, end = c.by_x_T
    at_last, at_end = log_term(x_last, t_last)[last], log_term(x_end, T_end)[end]
    with np.errstate(divide="ignore"):  # A0 = 0 (log -inf) for a purchase at T: certainly alive
        return at_last + np.log1p(-np.exp(np.minimum(at_end - at_last, 0)))  # log(exp(at_last) - exp(at_end))


def paretonbd_log_likelihood(params, c: Customers) -> np.ndarray:
    """Each customer's log-likelihood (Fader & Hardie's note, eq. 18)."""
    r, alpha, s, beta = params
    x, T = c.x, c.T
    xs, index = c.by_x
    head = special.gammaln(r + xs)[index] - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    return head + np.logaddexp(alive, np.log(s) - np.log(r + s + x) + _paretonbd_log_a0(params, c))


def paretonbd_expected(params, t) -> np.ndarray:
    """Expected purchases in (0, t] of a customer who has just made a first purchase."""
    r, alpha, s, beta = params
    t = np.asarray(t, dtype=float)
    return r * beta / (alpha * (s - 1)) * (1 - np.exp((s - 1) * np.log(beta / (beta + t))))


def paretonbd_p_alive(params, c: Customers) -> np.ndarray:
    """P(still a customer | x, t_x, T)."""
    r, alpha, s, beta = params
    x, T = c.x, c.T
    log_odds = np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
    return special.expit(-(log_odds + _paretonbd_log_a0(params, c)))


def paretonbd_conditional(params, c: Customers, t) -> np.ndarray:
    """Expected purchases in (T, T + t] given (x, t_x, T): while alive, times P(alive)."""
    return paretonbd_while_alive(params, c.x, c.T, t) * paretonbd_p_alive(params, c)


def paretonbd_while_alive(params, x, T, t) -> np.ndarray:
    """Expected purchases in (T, T + t] of a customer alive at T after x repeat purchases."""
    r, alpha, s, beta = params
    t = np.asarray(t, dtype=float)
    rate = (r + x) * (beta + T) / ((alpha + T) * (s - 1))
    return rate * (1 - np.exp((s - 1) * np.log((beta + T) / (beta + T + t))))


# --- Gamma-Gamma (parameters p, q, v) -----------------------------------------------------------------------


def gammagamma_log_likelihood(
    x: np.ndarray, m: np.ndarray, weight: np.ndarray | None = None
) -> Callable[[np.ndarray], float]:
    """The total log-likelihood of repeat buyers' mean spend `m` over `x` purchases, each row counted `weight`
    times (once by default), as a function of (p, q, v): terms in x alone are computed once per distinct x, and
    the sums the parameters do not enter, once."""
    weight = np.ones(len(x)) if weight is None else np.asarray(weight, dtype=float)
    xs, at = np.unique(x, return_inverse=True)
    count = np.bincount(at.reshape(-1), weights=weight)
    log_m, x_m = np.log(m), x * m
    constant = (weight * x * (log_m + np.log(x))).sum(), (weight * log_m).sum()

    def total(params) -> float:
        p, q, v = params
        px = p * xs
        per_x = special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
        return (count * per_x).sum() + p * constant[0] - constant[1] - (weight * (p * x + q) * np.log(x_m + v)).sum()

    return total


def gammagamma_spend(params, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Expected spend per purchase given x purchases of mean m: a weighted mean of the shop's and the customer's
    (the shop's alone without purchases)."""
    p, q, v = params
    x = np.asarray(x, dtype=float)
    return np.where(x > 0, p * (v + x * np.nan_to_num(m)) / (p * x + q - 1), p * v / (q - 1))


# --- fitting ------------------------------------------------------------------------------------------------

PARAMS = {"bgnbd": ("r", "alpha", "a", "b"), "paretonbd": ("r", "alpha", "s", "beta"), "gammagamma": ("p", "q", "v")}


def fit_bgnbd(c: Customers, weight: np.ndarray | None = None) -> Fit:
    return _fit_counts("bgnbd", bgnbd_log_likelihood, c, weight, extra=(0.5, 1.5))


def fit_paretonbd(c: Customers, weight: np.ndarray | None = None) -> Fit:
    return _fit_counts("paretonbd", paretonbd_log_likelihood, c, weight, extra=(1.0, None))


def _fit_counts(model: str, log_likelihood, c: Customers, weight: np.ndarray | None, extra) -> Fit:
    """Fit a purchase-count model on customers `c`, each row counted `weight` times (without weights, customers
    alike in (x, t_x, T) are grouped first); starting values from the moments: r/alpha near the repeat rate."""
    if weight is None:
        c, weight = c.distinct()
    weight = np.asarray(weight, dtype=float)
    repeat = weight[c.x > 0].sum()
    if repeat < 2:
        raise FitError(f"{model}: {int(repeat)} repeat buyers; at least 2 are needed to fit purchase counts")
    rate = max((weight * c.x).sum() / max((weight * c.T).sum(), 1e-9), 1e-6)
    second, third = extra
    start = [1.0, 1.0 / rate, second, third if third is not None else float(np.average(c.T, weights=weight))]
    # sums, not `@`: a threaded BLAS dot product stalls on a busy machine (10 ms instead of 0.1 ms per call)
    return _fit(model, lambda params: (log_likelihood(params, c) * weight).sum(), start, int(weight.sum()))


def fit_gammagamma(x: np.ndarray, m: np.ndarray, min_customers: int = 2, weight: np.ndarray | None = None) -> Fit:
    """Fit on repeat buyers (x > 0) with a positive mean spend, each row counted `weight` times (once by
    default); the others are left out."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    weight = np.ones(len(x)) if weight is None else np.asarray(weight, dtype=float)
    keep = (x > 0) & (m > 0)
    customers = int(weight[keep].sum())
    if customers < max(min_customers, 2):
        raise FitError(
            f"gammagamma: {customers} repeat buyers with a positive spend; at least {max(min_customers, 2)} "
            "are needed to fit spend per purchase"
        )
    x, m, weight = x[keep], m[keep], weight[keep]
    mean = np.average(m, weights=weight)
    var = np.average((m - mean) ** 2, weights=weight)
    start = [max(mean**2 / var, 0.1) if var > 0 else 1.0, 3.0, mean]
    fitted = _fit("gammagamma", gammagamma_log_likelihood(x, m, weight), start, customers)
    if fitted.params["q"] <= 1:  # the mean of nu's inverse, and so of spend per purchase, is (q - 1)^-1 v
        raise FitError(
            f"gammagamma: q = {fitted.params['q']:.3g}, at most 1: spend per purchase has no finite mean in this shop "
            "(a few customers' very large orders?), so the model cannot value a customer's purchases"
        )
    return fitted


def _fit(model: str, total_log_likelihood, start, customers: int) -> Fit:
    def objective(log_params):
        value = -total_log_likelihood(np.exp(log_params))
        return value if np.isfinite(value) else 1e300

    start = np.clip(np.log(start), *LOG_BOUNDS)
    # tight tolerances: in a short history the likelihood is flat along some directions (BG/NBD's a and b)
    result = optimize.minimize(
        objective, start, method="L-BFGS-B", bounds=[LOG_BOUNDS] * len(start), options={"ftol": 1e-13, "gtol": 1e-8}
    )
    if not np.isfinite(result.fun) or result.fun >= 1e300:
        raise FitError(f"{model}: the likelihood is not finite at any parameters tried ({result.message})")
    names = PARAMS[model]
    params = np.exp(result.x)
    hessian = _hessian(objective, result.x)
    log_errors = _log_std_errors(hessian)
    std_errors = params * log_errors
    log_intervals = result.x[:, None] + np.outer(log_errors, [-Z_95, Z_95])
    issues, undetermined = _undetermined(names, objective, result.x, hessian, log_intervals)
    return Fit(
        model=model,
        params=dict(zip(names, params.tolist(), strict=True)),
        std_errors=dict(zip(names, std_errors.tolist(), strict=True)),
        intervals={name: tuple(bounds) for name, bounds in zip(names, np.exp(log_intervals).tolist(), strict=True)},
        log_likelihood=-float(result.fun),
        customers=customers,
        converged=bool(result.success and not issues),
        issues=issues,
        undetermined=undetermined,
    )


def _hessian(objective, at: np.ndarray) -> np.ndarray:
    """The negative log-likelihood's Hessian in the log-parameters (central differences): the observed
    information matrix."""
    n, h = len(at), 1e-4
    hessian = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * h, np.eye(n)[j] * h
            hessian[i, j] = hessian[j, i] = (
                objective(at + ei + ej) - objective(at + ei - ej) - objective(at - ei + ej) + objective(at - ei - ej)
            ) / (4 * h * h)
    return hessian


def _log_std_errors(hessian: np.ndarray) -> np.ndarray:
    """Standard errors of the log-parameters: the inverse of the information matrix; the delta method turns
    them into the parameters' (se(theta) = theta * se(log theta))."""
    try:
        variances = np.diag(np.linalg.inv(hessian))
    except np.linalg.LinAlgError:
        return np.full(len(hessian), np.nan)
    return np.sqrt(np.where(variances > 0, variances, np.nan))


def _undetermined(
    names: tuple[str, ...], objective, at: np.ndarray, hessian: np.ndarray, log_intervals: np.ndarray
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Why the likelihood does not determine the fit at the log-parameters `at`, and which parameters: one at a
    bound, an information matrix near singular, a likelihood that stays within the 95% cut of its maximum along
    its flattest direction all the way to a bound (the optimizer stops on such a ridge wherever its tolerance
    says), a 95% interval that reaches a bound."""
    issues, concerned = [], set()
    for name, value in zip(names, at, strict=True):
        if np.isclose(value, LOG_BOUNDS[0]) or np.isclose(value, LOG_BOUNDS[1]):
            issues.append(f"{name} = {np.exp(value):.3g} is at its bound")
            concerned.add(name)
    if not np.isfinite(hessian).all():
        return (*issues, "the information matrix could not be computed"), names
    eigenvalues, vectors = np.linalg.eigh(hessian)
    flat = [name for name, weight in zip(names, vectors[:, 0], strict=True) if abs(weight) >= 0.3]
    if eigenvalues[0] <= 0 or eigenvalues[-1] / eigenvalues[0] > NEAR_SINGULAR:
        condition = f"condition number {eigenvalues[-1] / eigenvalues[0]:.2g}" if eigenvalues[0] > 0 else "singular"
        issues.append(f"the information matrix is near singular ({condition}): the likelihood is flat along "
                      f"{', '.join(flat)}")  # fmt: skip
        concerned.update(flat)
    for direction in (vectors[:, 0], -vectors[:, 0]):
        edge = at + _to_bounds(at, direction) * direction
        with np.errstate(all="ignore"):  # at the bounds a likelihood may not be finite: then it is not flat there
            rise = objective(edge) - objective(at)
        if rise < LIKELIHOOD_RATIO_95:
            far = ", ".join(f"{name} = {value:.3g}" for name, value in zip(names, np.exp(edge), strict=True))
            issues.append(f"{', '.join(flat)} run to a bound: the likelihood stays within the 95% cut of its maximum "
                          f"as far as {far}")  # fmt: skip
            concerned.update(flat)
    low, high = np.exp(LOG_BOUNDS)
    runs = ~((log_intervals[:, 0] > LOG_BOUNDS[0]) & (log_intervals[:, 1] < LOG_BOUNDS[1]))  # NaN: no interval
    for name in np.array(names)[runs]:
        issues.append(f"the 95% interval of {name} runs to a bound ({low:g} .. {high:g})")
        concerned.add(name)
    return tuple(issues), tuple(name for name in names if name in concerned)


def _to_bounds(at: np.ndarray, direction: np.ndarray) -> float:
    """How far from `at` along `direction` the first log-parameter reaches its bound."""
    moving = np.abs(direction) > 1e-12
    bound = np.where(direction > 0, LOG_BOUNDS[1], LOG_BOUNDS[0])
    return float(np.min((bound - at)[moving] / direction[moving]))


class CountModel(NamedTuple):
    fit: Callable  # (customers, weight=None): a Fit
    expected: Callable  # (params, t): a new customer's expected purchases in (0, t]
    conditional: Callable  # (params, customers, t): expected purchases in (T, T + t]
    p_alive: Callable  # (params, customers)
    while_alive: Callable  # (params, x, T, t): conditional without P(alive), which depends on x and T only


COUNT_MODELS = {
    "bgnbd": CountModel(fit_bgnbd, bgnbd_expected, bgnbd_conditional, bgnbd_p_alive, bgnbd_while_alive),
    "paretonbd": CountModel(
        fit_paretonbd, paretonbd_expected, paretonbd_conditional, paretonbd_p_alive, paretonbd_while_alive
    ),
}


def independence(x: np.ndarray, m: np.ndarray, count: np.ndarray | None = None) -> float:
    """Pearson correlation of repeat buyers' purchase count and mean spend, each row counted `count` times (an
    integer, once by default): Gamma-Gamma assumes it near 0."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    count = np.ones(len(x), dtype=np.int64) if count is None else np.asarray(count)
    keep = (x > 0) & (m > 0)
    if count[keep].sum() < 3:
        return float("nan")
    covariance = np.cov(x[keep], m[keep], fweights=count[keep])
    return float(covariance[0, 1] / np.sqrt(covariance[0, 0] * covariance[1, 1]))


def simulate_bgnbd(params, T: np.ndarray, rng: np.random.Generator) -> Customers:
    """Customers drawn from BG/NBD with ages T: a rate from Gamma(r, alpha), a drop-out probability from
    Beta(a, b) tried after each purchase, exponential gaps (for parameter recovery and benchmarks)."""
    r, alpha, a, b = params
    T = np.asarray(T, dtype=float)
    rate, drop = rng.gamma(r, 1 / alpha, len(T)), rng.beta(a, b, len(T))
    x, t_x, now = np.zeros(len(T)), np.zeros(len(T)), np.zeros(len(T))
    active = np.ones(len(T), dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1 / rate[idx])
        bought = now[idx] <= T[idx]
        x[idx[bought]] += 1
        t_x[idx[bought]] = now[idx[bought]]
        active[idx[~bought]] = False
        active[idx[bought]] = rng.random(bought.sum()) >= drop[idx[bought]]
    return Customers(x, t_x, T)


def simulate_spend(params, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean spend of each customer's x purchases under Gamma-Gamma (NaN without purchases)."""
    p, q, v = params
    x = np.asarray(x, dtype=float)
    scale = rng.gamma(q, 1 / v, len(x))  # each customer's nu
    return np.where(x > 0, rng.gamma(np.maximum(p * x, 1e-9), 1 / (np.maximum(x, 1) * scale)), np.nan)
