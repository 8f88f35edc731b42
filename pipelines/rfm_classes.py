"""The eight RFM classes, once: which of recency, frequency and monetary value are high -> (code, 中文 name).

The settings check class names against them, assets/customers/rfm.py assigns them, the synthetic shop simulates
them. Their names and advice in each report language are in the catalogs reports/locales/<language>.yaml; the
中文 names are these (the warehouse's `rfm_class_zh`), but where zh.yaml says otherwise.
"""

CLASSES = {
    (True, True, True): ("important_value", "重要价值客户"),
    (False, True, True): ("important_winback", "重要唤回客户"),
    (True, False, True): ("important_develop", "重要深耕客户"),
    (False, False, True): ("important_retain", "重要挽留客户"),
    (True, True, False): ("potential", "潜力客户"),
    (True, False, False): ("new", "新客户"),
    (False, True, False): ("general_maintain", "一般维持客户"),
    (False, False, False): ("lost", "流失客户"),
}
# (code, 中文) by the class's number, 4 x R high + 2 x F high + M high
BY_NUMBER = [names for _, names in sorted((4 * r + 2 * f + m, names) for (r, f, m), names in CLASSES.items())]
CLASS_CODES = tuple(code for code, _ in BY_NUMBER)
CLASS_LABELS_ZH = dict(BY_NUMBER)
