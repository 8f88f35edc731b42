"""The overview's section on predictions: the lifecycle rule and the model judged on the shop's own hold-out
(analysis.prediction_quality and prediction_tracking), in plain words, a table and the tracking chart."""

import polars as pl
import pygal

from reports.render import chart

WORDS = {
    "en": {
        "title": "Who buys again: the rule and the model on the last {days} days",
        "method": "Method", "rule": "Lifecycle rule (stages)", "model": "Model ({model})",
        "auc": "Tells buyers from non-buyers (AUC)", "mae": "Error in purchases per customer",
        "expected": "Purchases expected", "actual": "Purchases made",
        "how": "We held back the last {days} days (after {end}) and let both predict them from the history before: "
               "{customers:,} customers, of whom {buyers:,} bought again.",
        "rule_words": "Of the {flagged:,} customers the rule called churned (the stage: beyond 2 cycles or a year), "
                      "{bought:.0%} bought again; they held "
                      "{held:.0%} of the customers who did not come back.",
        "model_words": "The model's top 10% at risk ({flagged:,} customers) held {held:.0%} of the customers who did "
                       "not come back; {bought:.0%} of them bought again.",
        "auc_help": "AUC is the chance that a customer who bought again ranks above one who did not: 0.5 is a coin "
                    "toss, 1 is perfect.",
        "trust_model": "Trust the model: it tells who buys again better ({better:.2f} against {worse:.2f}).",
        "trust_rule": "Trust the rule: the model does not tell who buys again better ({better:.2f} against "
                      "{worse:.2f}).",
        "trust_rule_undetermined": "Trust the rule: the data do not determine the model's fit (its likelihood is "
                                   "flat along {params}), so its ranking is not relied on, whatever its AUC.",
        "chart": "Repeat purchases per week, made and expected by the model fitted before the hold-out "
                 "(from {end} on, the hold-out)",
        "made": "made", "model_expects": "model",
        "not_fitted": "The model could not be fitted on the history before the last {days} days (too few repeat "
                      "buyers), so the rule cannot be compared with it yet.",
    },
    "zh": {
        "title": "谁会再次购买：经验规则与模型在最近 {days} 天的表现",
        "method": "方法", "rule": "生命周期规则（阶段）", "model": "模型（{model}）",
        "auc": "区分回购与未回购（AUC）", "mae": "每位客户购买次数的误差",
        "expected": "预测购买次数", "actual": "实际购买次数",
        "how": "我们留出最近 {days} 天（{end} 之后），让两者只用此前的历史来预测：共 {customers:,} 位客户，"
               "其中 {buyers:,} 位再次购买。",
        "rule_words": "规则判为流失（阶段：超过 2 个周期或一年）的 {flagged:,} 位客户中，{bought:.0%} 再次购买；"
                      "他们占未回购客户的 {held:.0%}。",
        "model_words": "模型风险最高的 10%（{flagged:,} 位客户）占未回购客户的 {held:.0%}；"
                       "其中 {bought:.0%} 再次购买。",
        "auc_help": "AUC 是一位回购客户排在一位未回购客户之前的概率：0.5 相当于抛硬币，1 为完美。",
        "trust_model": "建议采信模型：它更能区分谁会回购（{better:.2f} 对 {worse:.2f}）。",
        "trust_rule": "建议采信规则：模型并不更能区分谁会回购（{better:.2f} 对 {worse:.2f}）。",
        "trust_rule_undetermined": "建议采信规则：数据无法确定模型的参数（似然在 {params} 方向上近乎平坦），"
                                   "无论其 AUC 如何，其排序都不可靠。",
        "chart": "每周回购次数：实际与留出期前拟合的模型预测（{end} 起为留出期）",
        "made": "实际", "model_expects": "模型",
        "not_fitted": "最近 {days} 天之前的历史不足以拟合模型（回购客户太少），暂时无法与规则比较。",
    },
}  # fmt: skip
MODEL_NAMES = {"bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD"}
LABEL_EVERY_WEEKS = 8


def prediction_section(language: str, model: str, holdout_days: int, quality: pl.DataFrame | None,
                       weekly: pl.DataFrame | None) -> dict:  # fmt: skip
    """The section's context: words, table rows and chart, or only why there are none."""
    words = WORDS[language]
    if quality is None or quality.is_empty():
        return {"title": words["title"].format(days=holdout_days), "rows": [],
                "not_fitted": words["not_fitted"].format(days=holdout_days)}  # fmt: skip
    by_method = {row["method"]: row for row in quality.iter_rows(named=True)}
    rule, fitted = by_method["rule"], by_method["model"]
    end = rule["calibration_end_date"]
    # a fit the data do not determine (a flat ridge, a bound) ranks by chance along the ridge: the rule then
    undetermined = fitted.get("undetermined_params")
    model_wins = not undetermined and (fitted["auc_buys_again"] or 0) > (rule["auc_buys_again"] or 0)
    better, worse = (fitted, rule) if model_wins else (rule, fitted)
    trust = "trust_rule_undetermined" if undetermined else "trust_model" if model_wins else "trust_rule"
    labels = [str(day) for day in weekly["week_start_date"]]
    return {
        "title": words["title"].format(days=rule["holdout_days"]),
        "how": words["how"].format(days=rule["holdout_days"], end=end, customers=rule["customers"],
                                   buyers=rule["buyers"]),
        "findings": [
            words[f"{method}_words"].format(flagged=row["flagged_customers"],
                                            bought=row["flagged_bought_again_share"] or 0,
                                            held=row["non_returners_flagged_share"] or 0)
            for method, row in (("rule", rule), ("model", fitted))
        ],
        "auc_help": words["auc_help"],
        "trust": words[trust].format(
            better=better["auc_buys_again"] or 0, worse=worse["auc_buys_again"] or 0, params=undetermined),
        "header": [words[key] for key in ("method", "auc", "mae", "expected", "actual")],
        "rows": [
            (words["rule"], rule), (words["model"].format(model=MODEL_NAMES[model]), fitted),
        ],
        "chart_title": words["chart"].format(end=end),
        "chart": chart(
            pygal.Line, labels,
            {words["made"]: weekly["actual_purchases"].to_list(),
             words["model_expects"]: weekly["expected_purchases"].round(1).to_list()},
            x_label_rotation=30, show_dots=False, show_minor_x_labels=False,
            x_labels_major=labels[::LABEL_EVERY_WEEKS],
        ),
        "not_fitted": None,
    }  # fmt: skip
