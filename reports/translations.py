"""Every word a report shows, in each language it is offered in. A key missing from a
language fails the render (and a test), rather than showing the key to a reader."""

from pipelines.rfm_classes import CLASS_LABELS_ZH

TEXT = {
    "en": {
        "overview_title": "Shop overview",
        "as_of": "Customers as of",
        "customers": "Customers",
        "revenue": "Net revenue",
        "repeat_rate": "Repeat-purchase rate",
        "top_share": "Revenue from the top 20% of customers",
        "classes": "Customer classes",
        "class": "Class",
        "action": "What to do",
        "customer_share": "Share of customers",
        "revenue_share": "Share of revenue",
        "stages": "Lifecycle stages",
        "stage": "Stage",
        "tiers": "Order-value tiers (average order)",
        "member_tiers": "Member tiers",
        "member_tiers_intro": (
            "Members in each tier at each month's end, {first} to {last}: a tier is earned by recency, orders and "
            "spend together, and left only after its grace period."
        ),
        "member_tier": "Tier",
        "tier_benefit": "Benefit",
        "tier_migration": "Tier migration",
        "tier_migration_intro": (
            "Members by tier on {start}, the build-up's first day (rows), and on {end}, the after-glow's last "
            "(columns): {n} members on {end}."
        ),
        "tier_from_to": "On the first day ↓ · on the last →",
        "joined_during_event": "Joined since the build-up began",
        "tier": "Tier",
        "cycles": "Purchase cycles by category",
        "category": "Main category",
        "repeat_customers": "Repeat buyers",
        "median_cycle": "Typical cycle (days)",
        "due_week": "Due for a reminder in the next 7 days",
        "due_date": "Due from",
        "none_due": "Nobody enters the due window in the next 7 days.",
        "footer": "Made by regulars from the shop's orders. Customer ids are masked.",
        "stage_new": "new (lifecycle stage): one purchase, within a cycle",
        "stage_active": "active: repeat buyer, within a cycle",
        "stage_due": "due: the moment to remind",
        "stage_at_risk": "at risk: beyond 1.5 cycles",
        "stage_churned": "churned: beyond 2 cycles or a year",
        "review_title": "Post-promotion review",
        "goals_from": "Goals were set from {event}, scaled by the shop's growth.",
        "no_comparable": "There was no earlier event of this kind with orders: goals come from the settings, if any.",
        "passed_over": "Not compared with {events}: too few orders (a gap in the data?).",
        "summary": "Summary",
        "goal": "Goal",
        "no_goal": "no goal set",
        "went_best": "What went best",
        "went_worst": "What went worst",
        "none_at_goal": "Nothing reached its goal.",
        "none_below_goal": "Everything reached its goal.",
        "of_goal_sentence": "{share} of goal ({actual} against {goal})",
        "no_goals_to_rank": "No goals were set, so nothing can be ranked against them.",
        "goal_vs_actual": "Actual as a share of goal",
        "comparable_line": "{event}: {actual} · this event {change} · goal {goal}",
        "goal_basis_title": "How the goals were set",
        "goal_growth": "Goal on it",
        "band": "Planning band ({low}th–{high}th percentile)",
        "band_where": "Result",
        "band_inside": "inside the band",
        "band_above": "above the band",
        "band_below": "below the band",
        "band_line": "band {low} – {high}: {where}",
        "band_note": (
            "The planning band was set before the event, from the shop's purchase and spend models fitted on what "
            "it knew at the baseline and the uplift its earlier lists measured: an event planned as the goals say "
            "lands inside it {share} of the time. It tells chance apart from a real miss or a real win; it does not "
            "check the growth the goals assumed."
        ),
        "no_band": "no band",
        "no_band_reason": "No planning bands: {reason}",
        "plan_title": "Event plan",
        "plan_intro": (
            "Made before the event from what the shop knew on {day}. Each goal has the band an event planned "
            "this way is likely to land in; each list has a control group sized to tell what its messages change."
        ),
        "plan_goals": "Goals and planning bands",
        "plan_lists": "Lists and what their control groups can tell",
        "plan_no_lists": "No list is made yet: each phase's list is made once the data reach its first day.",
        "audience": "Audience",
        "control_share": "Held out",
        "sized_by": "Sized by",
        "basis_phase+audience": "same phase and audience, {n} earlier lists",
        "basis_audience": "same audience, {n} earlier lists",
        "basis_all": "all {n} earlier lists",
        "basis_none": "no earlier list",
        "can_tell": "What it can tell",
        "can_detect": "can detect an uplift of {points} points or more (earlier lists: {uplift})",
        "too_small_to_tell": (
            "too small to tell {uplift} points (it could detect {points}): pool it with its phase's lists, or "
            "hold out one global control group across the event's phases"
        ),
        "too_small_no_uplift": "can detect {points} points or more; earlier lists showed no uplift to size for",
        "too_small_at_all": "too small to tell anything alone: pool it",
        "none_can_tell": (
            "No list of this event can tell its uplift alone. Pooled, its lists can detect {points} points; or hold "
            "out one global control group across the event's phases (outreach.control.global_share)."
        ),
        "none_can_tell_at_all": (
            "No list of this event can tell its uplift alone: pool them, or hold out one global control group "
            "across the event's phases (outreach.control.global_share)."
        ),
        "planned_to_tell": "planned: {sentence}",
        "this_event_column": "This event",
        "change_on_comparable": "This event on it",
        "growth_measured": (
            "The shop's growth, measured over the {days} days before each event's build-up: buyers {buyer}, spend "
            "per buyer {spend} (orders per buyer {frequency}, order value {order_value}). Returning buyers' goal is "
            "each class's size now times its response rate then."
        ),
        "growth_window_cut": (
            "The data start on {start}: only {days} of the {full} days before {event}'s build-up are known, so both "
            "events' growth was measured over {days} days."
        ),
        "growth_no_data_before": (
            "The data start on {start}, with {event}'s build-up: no growth could be measured, so goals take it as none."
        ),
        "growth_from_setting": "Growth set in the settings (events.growth_rate): {rate}.",
        "of_goal": "actual / goal",
        "phases": "Phase by phase",
        "phase": "Phase",
        "rounding_note": (
            "Money and counts are shown in whole units, so the phases may add up to a unit or two more or "
            "less than the summary above."
        ),
        "daily_revenue": "Net revenue per day",
        "this_event": "this event",
        "comparable_event": "{event} (same day from the sprint)",
        "classes_response": "Response by class",
        "class_at_baseline": "Class when the event began",
        "assumed_rate": "Rate the goal assumed",
        "first_order_in_build_up": "First order in the build-up (no class yet)",
        "all_returning_buyers": "All: the returning buyers",
        "migration": "Class migration",
        "migration_intro": (
            "Customers by their class when the event began (bars) and when the after-glow ended (colours)."
        ),
        "from_to": "When it began ↓ · when it ended →",
        "acquired": "Customers the event acquired",
        "acquired_intro": "{n} customers bought for the first time during the event:",
        "acquired_vs_phases": "The phase table's new buyers add up to {phases}, not {n}: a new customer who bought "
        "in two phases is a new buyer in each there, and counted here once, in the phase of the first purchase.",
        "cohorts": "Do promotion-acquired customers come back?",
        "acquired_in": "First purchase in",
        "acquired_customers": "Customers",
        "repeat_90": "Bought again within 90 days",
        "repeat_180": "Within 180 days",
        "too_early": "too early",
        "cohorts_note": (
            "A customer counts once 90 (or 180) days have passed since their first purchase; "
            '"outside events" are customers whose first purchase fell outside every event before this one.'
        ),
        "outside_events": "Outside events",
        "top_sellers": "Best sellers",
        "sku": "SKU",
        "product": "Product",
        "units": "Units",
        "data_quality": "Data quality",
        "quality_intro": (
            "{rows} source rows arrived for the event's days; {rejected} ({share}) were refused and kept aside:"
        ),
        "reason": "Reason",
        "rows": "Rows",
        "measure_new_buyers": "New buyers",
        "measure_returning_buyers": "Returning buyers",
        "measure_buyers": "Buyers",
        "measure_revenue_new": "Revenue from new buyers",
        "measure_revenue_returning": "Revenue from returning buyers",
        "measure_revenue": "Net revenue",
        "measure_orders": "Orders",
        "measure_items": "Items sold",
        "measure_open_orders": "Open (not completed)",
        "measure_cancelled_orders": "Cancelled, returned or lost",
        "not_completed_by_day": "Orders not completed, by day (not counted as orders or revenue)",
        "date": "Day",
        "measure_average_order_value": "Average order value",
        "measure_items_per_order": "Items per order",
        "measure_response_rate": "Response rate",
        "phase_build_up": "Build-up",
        "phase_warm_up": "Warm-up",
        "phase_sprint": "Sprint",
        "phase_after_glow": "After-glow",
        "reason_ragged_row": "more or fewer fields than the header",
        "reason_outside_history": "order day outside the shop's history",
        "reason_ambiguous_amount": "amount readable two ways (1,250: set the decimal mark)",
        "reason_malformed_amount": "amount with two decimal marks or misplaced thousands marks",
        "reason_duplicate": "an identical row came earlier",
        "reason_bad_timestamp": "order time missing or unreadable",
        "reason_missing_customer": "no customer id",
        "reason_bad_amount": "amount missing or not a number",
        "reason_negative_amount": "negative amount on a sale",
        "reason_outlier": "amount beyond the set ceiling",
        "reason_other_currency": "another currency",
        "reason_duplicate_order": "order id reused with other values",
        "reason_conflicting_customer": "lines of one order name different customers",
        "outreach_title": "Did the outreach work?",
        "outreach_intro": (
            "Every list held out a random share of its customers, who got no message. What the contacted bought "
            "within {days} days of their list's day, less what the held-out bought, is what the messages did. "
            "An uplift is told only when Fisher's exact test finds it at 5% and its 95% interval excludes zero; "
            "otherwise it is too few to tell, and no return on spend is given."
        ),
        "reminders_title": "Did the reminders work? (last 90 days)",
        "reminders_intro": (
            "Each day's reminders held out a random share of the customers due that day. What the reminded "
            "bought within {days} days, less what the held-out bought, by class."
        ),
        "outreach_none": "No list held anyone out (too small, or none made), so there is nothing to compare yet.",
        "list": "List",
        "contacted": "Contacted",
        "held_out": "Held out",
        "bought_contacted": "Bought, contacted",
        "bought_held_out": "Bought, held out",
        "uplift": "Uplift, points (95% interval)",
        "incremental_revenue": "Incremental revenue",
        "cost": "Cost",
        "return_on_spend": "Return per 1 spent",
        "too_few_to_tell": "too few to tell",
        "exact_test_p": "exact test p = {p}",
        "no_control_group": "no control group",
        "uplift_chart_series": "Uplift in the share who bought, points",
        "uplift_chart_title": "Uplift in the share who bought (percentage points), with its 95% interval",
        "all_lists": "All lists",
        "phase_all_lists": "{phase}: all lists",
        "all_reminders": "All reminders",
        "audiences_title": "Did the lists of the shop's own audiences work? (last 90 days)",
        "audiences_intro": (
            "Each day's list of each of the shop's own audiences held out a random share of its customers. What the "
            "contacted bought within {days} days, less what the held-out bought, by audience and by offer."
        ),
        "all_audience_lists": "All audience lists",
        "offer_line": "Offer: {offer}",
        "audience_engaged": "Engaged",
        "audience_missed": "Missed the sprint",
        "audience_new_buyers": "New buyers",
        "period": "This period against the previous one",
        "period_range": "{first} to {last}, against {previous_first} to {previous_last}",
        "measure": "Measure",
        "this_period": "This period",
        "previous_period": "Previous period",
        "change": "Change",
        "measure_churn_rate": "Churn rate (no order in {days} days)",
        "measure_repeat_rate": "Repeat-purchase rate",
        "rates_note": (
            "Rates on the period's (or the month's) last day, over every customer so far. Churn rate: the share "
            "whose last order is more than {days} days before that day, who did not come back within a year. "
            "Repeat-purchase rate: the share who bought on two or more days."
        ),
        "not_enough_history": "not enough history",
        "unnamed_statuses": "Order statuses the settings do not name, counted as completed orders here:",
        "unnamed_statuses_fix": (
            "If some are not completed purchases, name them in source.open_statuses or cancellation.status_in "
            "(and the completed ones in source.completed_statuses) and load again."
        ),
        "status_treated": {"completed": "counted as completed", "open": "open", "cancelled": "cancelled"},
        "first_seen": "first seen",
        "list_separator": "; ",
        "previous_not_enough": "previous: not enough history",
        "period_partial": "The data start on {start}: this period's figures cover {start} to {last} only.",
        "previous_not_known": (
            "The data start on {start}: the previous period is before them, so there is not enough history to "
            "compare with."
        ),
        "previous_partial": (
            "The data start on {start}, inside the previous period: its figures cover part of it, so no change is "
            "given."
        ),
        "churn_needs_history": (
            "A churn rate needs more than {days} days of data (before then nobody can have been away that long): "
            "it is known from {day}."
        ),
        "by_month": "Month by month",
        "month": "Month",
        "by_month_note": "Under each figure, in grey: the same month of the previous period.",
        "revenue_by_month": "Net revenue by month, from new and from returning customers",
        "revenue_against_previous": "Net revenue by month against the previous period",
        "new_customers_note": "New customers: whose first order is in that month; returning: earlier.",
        "class_mix_by_month": "Customer classes, month by month",
        "class_mix_note": "Share of customers in each class on each month's last day, as recorded in the history.",
        "cohort_grid": "Do new customers come back? Cohorts by month of first purchase",
        "cohort": "First purchase in",
        "months_since": "Months after",
        "cohort_note": "Each cell: the share of the month's new customers who bought again in the n-th month after it.",
        "due_by_day": "Customers entering their due window, by day and class (new and active customers).",
        "due_by_channel": "By the channel of their first order:",
        "due_file": "The list, with ids, classes and channels, for whoever sends the reminders:",
        "total": "Total",
        "unknown": "unknown",
        "product_roles": "What each product does",
        "product_roles_intro": "{kind}, by the role it plays:",
        "kind_sku": "Products",
        "kind_category": "Categories",
        "role": "Role",
        "first_order_share": "In first orders",
        "returning_order_share": "In returning customers' orders",
        "acquired_repeat_rate": "Customers it acquired who came back",
        "growth": "Orders, last 90 days against the 90 before",
        "role_traffic": "traffic",
        "role_profit": "profit",
        "role_potential": "potential",
        "role_marginal": "marginal",
        "roles_rule": (
            "Traffic: in a larger share of first orders than the average product, and larger there than in "
            "returning customers' orders. Profit: in a larger share of returning customers' orders than the "
            "average product, and larger there than in first orders. Potential: neither, but ordered at least "
            "20% more in the last 90 days than in the 90 before (or new in them). Marginal: the rest. Win-back "
            "offers work best with traffic products."
        ),
        "chart_previous": "previous period",
        "points": "pt",
    },
    "zh": {
        "overview_title": "店铺概览",
        "as_of": "客户数据截至",
        "customers": "客户数",
        "revenue": "净销售额",
        "repeat_rate": "复购率",
        "top_share": "前 20% 客户贡献的销售额",
        "classes": "客户分类",
        "class": "类别",
        "action": "运营建议",
        "customer_share": "客户占比",
        "revenue_share": "销售额占比",
        "stages": "生命周期阶段",
        "stage": "阶段",
        "tiers": "客单价分层（平均每单）",
        "member_tiers": "会员等级",
        "member_tiers_intro": (
            "{first} 至 {last} 每月月末各会员等级的人数：等级由最近购买、购买次数与消费金额共同决定，"
            "降级前有保级缓冲期。"
        ),
        "member_tier": "等级",
        "tier_benefit": "权益",
        "tier_migration": "会员等级迁移",
        "tier_migration_intro": (
            "按蓄水期首日（{start}，行）与余热期末日（{end}，列）的会员等级统计：{end} 共有会员 {n} 人。"
        ),
        "tier_from_to": "首日 ↓ · 末日 →",
        "joined_during_event": "蓄水期开始后入会",
        "tier": "分层",
        "cycles": "各品类购买周期",
        "category": "主要品类",
        "repeat_customers": "复购客户",
        "median_cycle": "典型周期（天）",
        "due_week": "未来 7 天进入复购提醒期的客户",
        "due_date": "提醒起始日",
        "none_due": "未来 7 天没有客户进入复购提醒期。",
        "footer": "由 regulars 根据店铺订单生成。客户编号已脱敏。",
        "stage_new": "新客（生命周期阶段）：仅一次购买，周期内",
        "stage_active": "活跃：复购客户，周期内",
        "stage_due": "待复购：提醒的最佳时机",
        "stage_at_risk": "流失风险：超过 1.5 个周期",
        "stage_churned": "已流失：超过 2 个周期或一年",
        "review_title": "大促复盘",
        "goals_from": "目标依据{event}的实际表现，并按店铺增长调整。",
        "no_comparable": "此前没有有订单的同类活动：目标来自设置（如有）。",
        "passed_over": "未与{events}对比：订单过少（数据可能有缺口）。",
        "summary": "概要",
        "goal": "目标",
        "no_goal": "未设目标",
        "went_best": "表现最好",
        "went_worst": "表现最差",
        "none_at_goal": "没有指标达到目标。",
        "none_below_goal": "所有指标均达到目标。",
        "of_goal_sentence": "完成目标的 {share}（实际 {actual}，目标 {goal}）",
        "no_goals_to_rank": "未设目标，无法比较完成情况。",
        "goal_vs_actual": "目标完成率",
        "comparable_line": "{event}：{actual} · 本次 {change} · 目标 {goal}",
        "goal_basis_title": "目标如何制定",
        "goal_growth": "目标相对其倍数",
        "band": "规划区间（第 {low} 至第 {high} 百分位）",
        "band_where": "结果",
        "band_inside": "在区间内",
        "band_above": "高于区间",
        "band_below": "低于区间",
        "band_line": "区间 {low} – {high}：{where}",
        "band_note": (
            "规划区间在活动前制定：依据店铺在基准日所知数据拟合的购买与消费模型，以及以往名单实测的提升。按目标规划的活动，"
            "有 {share} 的可能落在区间内。区间用来区分偶然波动与真正的未达标或超额，并不检验目标所假设的增长。"
        ),
        "no_band": "无区间",
        "no_band_reason": "无规划区间：{reason}",
        "plan_title": "活动规划",
        "plan_intro": (
            "于活动前依据店铺截至 {day} 的数据制定。每项目标附有按此规划的活动可能落入的区间；"
            "每份名单的对照组按能否判断消息效果来定大小。"
        ),
        "plan_goals": "目标与规划区间",
        "plan_lists": "名单及其对照组能判断什么",
        "plan_no_lists": "尚未生成名单：每个阶段的名单在数据到达该阶段首日时生成。",
        "audience": "人群",
        "control_share": "留出比例",
        "sized_by": "参照",
        "basis_phase+audience": "以往同阶段同人群的 {n} 份名单",
        "basis_audience": "以往同人群的 {n} 份名单",
        "basis_all": "以往全部 {n} 份名单",
        "basis_none": "无以往名单",
        "can_tell": "能判断什么",
        "can_detect": "能检测出 {points} 个百分点及以上的提升（以往名单：{uplift}）",
        "too_small_to_tell": (
            "规模太小，无法判断 {uplift} 个百分点的提升（只能检测 {points}）：请与同阶段名单合并计算，"
            "或在活动各阶段设一个全局对照组"
        ),
        "too_small_no_uplift": "能检测出 {points} 个百分点及以上的提升；以往名单未显示可依据的提升",
        "too_small_at_all": "规模太小，单独无法判断：请合并计算",
        "none_can_tell": (
            "本次活动没有一份名单能单独判断其提升。合并后可检测 {points} 个百分点；"
            "或在活动各阶段设一个全局对照组（outreach.control.global_share）。"
        ),
        "none_can_tell_at_all": (
            "本次活动没有一份名单能单独判断其提升：请合并计算，"
            "或在活动各阶段设一个全局对照组（outreach.control.global_share）。"
        ),
        "planned_to_tell": "计划：{sentence}",
        "this_event_column": "本次活动",
        "change_on_comparable": "本次相对其倍数",
        "growth_measured": (
            "店铺增长按每次活动蓄水期前 {days} 天计算：购买人数 {buyer}，人均消费 {spend}"
            "（人均订单数 {frequency}，客单价 {order_value}）。老客购买人数目标为各类客户当前人数乘以其当时的响应率。"
        ),
        "growth_window_cut": (
            "数据从 {start} 开始：{event}蓄水期前的 {full} 天中只有 {days} 天有数据，"
            "因此两次活动的增长都按 {days} 天计算。"
        ),
        "growth_no_data_before": "数据从 {start} 开始，与{event}的蓄水期同时：无法计算增长，目标按不增长计算。",
        "growth_from_setting": "增长率来自设置（events.growth_rate）：{rate}。",
        "of_goal": "实际 / 目标",
        "phases": "分阶段表现",
        "phase": "阶段",
        "rounding_note": "金额与数量按整数显示，各阶段相加与上方汇总可能相差一两个单位。",
        "daily_revenue": "每日净销售额",
        "this_event": "本次活动",
        "comparable_event": "{event}（按距爆发期同一天对齐）",
        "classes_response": "各类客户响应",
        "class_at_baseline": "活动开始时的类别",
        "assumed_rate": "目标假设的响应率",
        "first_order_in_build_up": "蓄水期首次购买（尚无类别）",
        "all_returning_buyers": "合计：老客购买人数",
        "migration": "客户类别迁移",
        "migration_intro": "按活动开始时的类别（柱）与余热期结束时的类别（颜色）统计客户。",
        "from_to": "开始时 ↓ · 结束时 →",
        "acquired": "活动带来的新客",
        "acquired_intro": "{n} 位客户在活动期间首次购买：",
        "acquired_vs_phases": "分阶段表中的新客合计 {phases}，而非 {n}：在两个阶段都购买的新客"
        "在该表中每个阶段各计一次，此处只按首次购买的阶段计一次。",
        "cohorts": "大促新客会回购吗？",
        "acquired_in": "首次购买于",
        "acquired_customers": "客户数",
        "repeat_90": "90 天内再次购买",
        "repeat_180": "180 天内",
        "too_early": "尚早",
        "cohorts_note": "客户首次购买满 90（或 180）天后才计入；“活动之外”指首次购买不在本次之前任何活动期间的客户。",
        "outside_events": "活动之外",
        "top_sellers": "热销商品",
        "sku": "货号",
        "product": "商品",
        "units": "件数",
        "data_quality": "数据质量",
        "quality_intro": "活动期间共收到 {rows} 行源数据；其中 {rejected} 行（{share}）被拒收并单独保存：",
        "reason": "原因",
        "rows": "行数",
        "measure_new_buyers": "新客购买人数",
        "measure_returning_buyers": "老客购买人数",
        "measure_buyers": "购买人数",
        "measure_revenue_new": "新客销售额",
        "measure_revenue_returning": "老客销售额",
        "measure_revenue": "净销售额",
        "measure_orders": "订单数",
        "measure_items": "售出件数",
        "measure_open_orders": "未完成",
        "measure_cancelled_orders": "取消、退货或逾期未完成",
        "not_completed_by_day": "每日未完成的订单（不计入订单数与销售额）",
        "date": "日期",
        "measure_average_order_value": "客单价",
        "measure_items_per_order": "每单件数",
        "measure_response_rate": "响应率",
        "phase_build_up": "蓄水期",
        "phase_warm_up": "预热期",
        "phase_sprint": "爆发期",
        "phase_after_glow": "余热期",
        "reason_ragged_row": "字段数与表头不符",
        "reason_outside_history": "下单日期不在店铺历史范围内",
        "reason_ambiguous_amount": "金额有两种读法（如 1,250：请设定小数点符号）",
        "reason_malformed_amount": "金额含多个小数点或千位分隔位置错误",
        "reason_duplicate": "与之前的行完全相同",
        "reason_bad_timestamp": "下单时间缺失或无法识别",
        "reason_missing_customer": "缺少客户编号",
        "reason_bad_amount": "金额缺失或不是数字",
        "reason_negative_amount": "非退单的负金额",
        "reason_outlier": "金额超过设定上限",
        "reason_other_currency": "币种不符",
        "reason_duplicate_order": "订单号重复但内容不同",
        "reason_conflicting_customer": "同一订单的明细属于不同客户",
        "outreach_title": "触达有效果吗？",
        "outreach_intro": (
            "每个名单随机留出一部分客户作为对照组，不发送消息。"
            "被触达客户在名单触达日起 {days} 天内的购买，减去对照组的购买，就是消息带来的效果。"
            "只有 Fisher 精确检验在 5% 水平上显著且 95% 区间不含零时，提升才算可判断；"
            "否则属于“样本太少，无法判断”，也不给出投入产出比。"
        ),
        "reminders_title": "复购提醒有效果吗？（最近 90 天）",
        "reminders_intro": (
            "每天的提醒名单随机留出一部分当天到期的客户作为对照组。"
            "被提醒客户 {days} 天内的购买减去对照组的购买，按客户类别列出。"
        ),
        "outreach_none": "没有名单留出对照组（名单太小或尚未生成），暂时无从比较。",
        "list": "名单",
        "contacted": "触达人数",
        "held_out": "对照组人数",
        "bought_contacted": "购买率（触达）",
        "bought_held_out": "购买率（对照）",
        "uplift": "提升，百分点（95% 区间）",
        "incremental_revenue": "增量销售额",
        "cost": "成本",
        "return_on_spend": "投入产出比",
        "too_few_to_tell": "样本太少，无法判断",
        "exact_test_p": "精确检验 p = {p}",
        "no_control_group": "无对照组",
        "uplift_chart_series": "购买率提升（百分点）",
        "uplift_chart_title": "购买率提升（百分点）及其 95% 区间",
        "all_lists": "全部名单",
        "phase_all_lists": "{phase}：全部名单",
        "all_reminders": "全部提醒",
        "audiences_title": "自定义人群名单有效果吗？（最近 90 天）",
        "audiences_intro": (
            "每个自定义人群每天的名单随机留出一部分客户作为对照组。"
            "被触达客户 {days} 天内的购买减去对照组的购买，按人群和优惠类型列出。"
        ),
        "all_audience_lists": "全部人群名单",
        "offer_line": "优惠：{offer}",
        "audience_engaged": "已互动客户",
        "audience_missed": "错过爆发期的客户",
        "audience_new_buyers": "新购买客户",
        "period": "本期与上期对比",
        "period_range": "{first} 至 {last}，对比 {previous_first} 至 {previous_last}",
        "measure": "指标",
        "this_period": "本期",
        "previous_period": "上期",
        "change": "变化",
        "measure_churn_rate": "流失率（{days} 天未购买）",
        "measure_repeat_rate": "复购率",
        "rates_note": (
            "比率按本期（或当月）最后一天计算，范围为截至当天的全部客户。流失率：最近一次购买距当天超过 {days} 天、"
            "即一年内没有回来的客户占比。复购率：在两天或以上购买过的客户占比。"
        ),
        "not_enough_history": "历史数据不足",
        "unnamed_statuses": "以下订单状态未在设置中说明，本报告按已完成订单计算：",
        "unnamed_statuses_fix": (
            "如其中有未完成的订单，请在 source.open_statuses 或 cancellation.status_in 中说明"
            "（已完成的写入 source.completed_statuses）后重新载入。"
        ),
        "status_treated": {"completed": "按已完成计", "open": "未完成", "cancelled": "已取消"},
        "first_seen": "首次出现于",
        "list_separator": "；",
        "previous_not_enough": "上期：历史数据不足",
        "period_partial": "数据从 {start} 开始：本期数字只涵盖 {start} 至 {last}。",
        "previous_not_known": "数据从 {start} 开始：上期在此之前，历史数据不足，无法对比。",
        "previous_partial": "数据从 {start} 开始，落在上期之内：上期数字只涵盖其一部分，因此不给出变化。",
        "churn_needs_history": "流失率需要超过 {days} 天的数据（此前不可能有客户离开这么久）：从 {day} 起才可计算。",
        "by_month": "逐月表现",
        "month": "月份",
        "by_month_note": "每个数字下方的灰色数字为上期同月。",
        "revenue_by_month": "每月净销售额：新客与老客",
        "revenue_against_previous": "每月净销售额与上期对比",
        "new_customers_note": "新客：首单在当月的客户；老客：首单更早的客户。",
        "class_mix_by_month": "各类客户占比（逐月）",
        "class_mix_note": "每月最后一天各类客户的占比，取自客户类别历史记录。",
        "cohort_grid": "新客会回来吗？按首购月份分组",
        "cohort": "首购月份",
        "months_since": "之后第几个月",
        "cohort_note": "每格：该月新客中，在之后第 n 个月再次购买的比例。",
        "due_by_day": "按日期与类别统计进入复购提醒期的客户（新客与活跃客户）。",
        "due_by_channel": "按首单渠道：",
        "due_file": "含客户编号、类别与渠道的名单，供发送提醒使用：",
        "total": "合计",
        "unknown": "未知",
        "product_roles": "商品角色",
        "product_roles_intro": "{kind}按角色分类：",
        "kind_sku": "商品",
        "kind_category": "品类",
        "role": "角色",
        "first_order_share": "首单占比",
        "returning_order_share": "老客订单占比",
        "acquired_repeat_rate": "其带来的新客复购率",
        "growth": "近 90 天订单对比前 90 天",
        "role_traffic": "引流款",
        "role_profit": "利润款",
        "role_potential": "潜力款",
        "role_marginal": "边缘款",
        "roles_rule": (
            "引流款：出现在首单中的比例高于商品平均水平，且高于其在老客订单中的比例。利润款：出现在老客订单中的比例"
            "高于商品平均水平，且高于其在首单中的比例。潜力款：两者都不是，但近 90 天订单比之前 90 天多 20% 以上"
            "（或为新品）。边缘款：其余商品。唤回优惠最适合搭配引流款。"
        ),
        "chart_previous": "上期",
        "points": "个百分点",
    },
}

ACTIONS = {
    "en": {
        "important_value": "keep: dedicated service", "important_winback": "win back now",
        "important_develop": "develop: raise frequency", "important_retain": "retain before they go",
        "potential": "grow basket size", "new": "nurture the second order",
        "general_maintain": "maintain cheaply", "lost": "low-cost reactivation only",
    },
    "zh": {
        "important_value": "重点维护：专属服务", "important_winback": "立即唤回",
        "important_develop": "深耕：提高购买频次", "important_retain": "流失前挽留",
        "potential": "提升客单价", "new": "促成第二单",
        "general_maintain": "低成本维持", "lost": "仅做低成本激活",
    },
}  # fmt: skip

CLASS_NAMES = {
    "en": {
        "important_value": "Important value", "important_winback": "Important win-back",
        "important_develop": "Important to develop", "important_retain": "Important to retain",
        "potential": "Potential", "new": "New (RFM class)", "general_maintain": "General maintain", "lost": "Lost",
    },
    # RFM's 新客户 and the lifecycle's new stage are different things: the class says which it is
    "zh": CLASS_LABELS_ZH | {"new": "新客户（RFM 类别）"},
}  # fmt: skip

# The synthetic shop's channels; a channel not named here shows as the export writes it
CHANNEL_NAMES = {
    "en": {"app": "app", "mini_program": "mini program", "web": "web", "livestream": "livestream"},
    "zh": {"app": "App", "mini_program": "小程序", "web": "网站", "livestream": "直播"},
}

# Outbox lists for a Chinese shop: the headers and coded values a marketer reads (an English shop's lists keep
# the codes, which is what CRM and SMS tools are set up with)
OUTBOX_COLUMNS = {
    "zh": {
        "event_id": "活动", "phase": "阶段", "contact_date": "联系日期", "customer_id": "客户编号",
        "audience": "人群", "rfm_class": "客户类别", "stage": "生命周期阶段", "due_date": "预计复购日",
        "expected_next_date": "预计下次购买日", "channel": "渠道", "reason": "联系原因", "message": "消息内容",
        "offer_kind": "优惠类型", "offer_discount": "折扣", "suggested_products": "推荐商品",
    },
}  # fmt: skip
# offers by product role (assets.outreach.offers)
OFFER_NAMES = {
    "en": {"traffic_deal": "deal on traffic products", "profit_discount": "small discount on profit products"},
    "zh": {"traffic_deal": "引流款促销", "profit_discount": "利润款小额折扣"},
}
STAGE_NAMES = {"zh": {"new": "新客", "active": "活跃", "due": "待复购", "at_risk": "流失风险", "churned": "已流失"}}
CONTACT_REASONS = {"zh": {"repurchase_due": "复购提醒"}}

# Names in messages to customers. Categories: the synthetic shop's (a shop names its own in
# outreach.category_names); events: the calendar's presets, without the year.
CATEGORY_NAMES = {
    "en": {"consumables": "everyday essentials", "snacks": "snacks", "beauty": "beauty products",
           "apparel": "clothes", "home": "home goods"},
    "zh": {"consumables": "日用品", "snacks": "零食", "beauty": "美妆护肤品", "apparel": "服饰", "home": "家居用品"},
}  # fmt: skip
EVENT_NAMES = {
    "en": {"618": "618", "double11": "Double 11", "double12": "Double 12", "newyear": "the New Year goods festival",
           "black_friday": "Black Friday", "cyber_monday": "Cyber Monday", "christmas": "Christmas"},
    "zh": {"618": "618", "double11": "双十一", "double12": "双十二", "newyear": "年货节", "black_friday": "黑色星期五",
           "cyber_monday": "网络星期一", "christmas": "圣诞节"},
}  # fmt: skip
