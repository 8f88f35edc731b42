"""Messages to customers read as sentences in the shop's language (#27.9): every template, for every class,
phase and audience, care reason and language, with and without each optional field."""

import itertools
import re
from datetime import date

import pytest
from jinja2 import nodes

from pipelines.calendar import preset
from pipelines.settings import CLASS_CODES
from reports.messages import _environment, category_name, event_name, render_message
from reports.translations import CATEGORY_NAMES

AUDIENCES = [*CLASS_CODES, "engaged", "missed", "new_buyers"]  # what events.plan may name in a phase
# codes that are no English word (class and phase codes have an underscore): never in a message
CODES = {code for code in CATEGORY_NAMES["en"] if code not in " ".join(CATEGORY_NAMES["en"].values())}
OPTIONAL = {"repurchase": ("category", "expected_next_date"), "campaign": ("category",), "care": ()}
SHOP = {"en": "Lotus Tea", "zh": "莲花茶铺"}


def messages():
    """(kind, language, audience, values given) for every message the pipeline can send, each optional field
    given and left empty in every combination."""
    for language in ("en", "zh"):
        event = event_name(preset("double11", 2024), language)
        audiences = {
            "repurchase": CLASS_CODES,
            "campaign": [f"{phase}_{a}" for phase in ("warm_up", "sprint", "after_glow") for a in AUDIENCES],
            "care": ["shipped", "delivered", "follow_up"],
        }
        for kind, names in audiences.items():
            given = {"category": category_name("snacks", language, {}), "expected_next_date": date(2025, 3, 8)}
            base = {"repurchase": {}, "campaign": {"event": event}, "care": {"order_id": "T2024110512"}}[kind]
            for audience, mask in itertools.product(
                names, itertools.product((True, False), repeat=len(OPTIONAL[kind]))
            ):
                values = {"shop": SHOP[language], **base}
                values |= {
                    field: given[field] if keep else None for field, keep in zip(OPTIONAL[kind], mask, strict=True)
                }
                yield kind, language, audience, values


@pytest.mark.parametrize(("kind", "language", "audience", "values"), list(messages()))
def test_every_message_reads_as_a_sentence_in_its_language(kind, language, audience, values):
    text = render_message(kind, language, audience, **values)
    assert "None" not in text and "{" not in text and "}" not in text
    words = set(re.findall(r"[A-Za-z_]+", text))
    assert not words & CODES and not any("_" in word for word in words), text
    assert "2025-03-08" not in text  # a date as its language writes it, not an ISO code
    assert not re.search(r"\s[.,;:?!]|\s{2}", text)  # no space left where a value was missing
    given = text
    for value in values.values():
        given = given.replace(str(value), "") if value and not isinstance(value, date) else given
    if language == "zh":
        assert not re.search(r"[A-Za-z]", given), text  # no English inside Chinese, but for the ids it names
    else:
        assert not re.search(r"[\u4e00-\u9fff]", given), text


def names_in(test: nodes.Node) -> set[str]:
    return {test.name} if isinstance(test, nodes.Name) else {n.name for n in test.find_all(nodes.Name)}


def guarded_outputs(node: nodes.Node, guards: frozenset[str] = frozenset()):
    """Each name printed in a template, with the names the `{% if %}`s (and `{% elif %}`s) around it test."""
    if isinstance(node, nodes.If):
        for child in node.body:
            yield from guarded_outputs(child, guards | names_in(node.test))
        for child in [*node.elif_, *node.else_]:  # an elif is an If of its own; an else guarantees nothing
            yield from guarded_outputs(child, guards)
    elif isinstance(node, nodes.Output):
        for name in node.find_all(nodes.Name):
            yield name.name, guards
    else:
        for child in node.iter_child_nodes():
            yield from guarded_outputs(child, guards)


@pytest.mark.parametrize(("kind", "language"), list(itertools.product(OPTIONAL, ("en", "zh"))))
def test_an_optional_field_is_printed_only_where_the_template_has_checked_it_is_there(kind, language):
    environment = _environment()
    source = environment.loader.get_source(environment, f"messages/{kind}.{language}.j2")[0]
    printed = list(guarded_outputs(environment.parse(source)))
    assert {name for name, _ in printed} >= set(OPTIONAL[kind])
    for name, guards in printed:
        if name in OPTIONAL[kind]:
            assert name in guards, f"{kind}.{language}: {name} printed where it may be empty"


def test_a_category_is_named_in_the_message_language_or_left_out():
    assert category_name("snacks", "zh", {}) == "零食"  # the synthetic shop's, built in
    assert category_name("snacks", "zh", {"snacks": "休闲零食"}) == "休闲零食"  # the shop's own name wins
    assert category_name("T恤", "zh", {}) == "T恤"  # written in Chinese already
    assert category_name("widgets", "zh", {}) is None  # an English code in a Chinese message: left out
    assert category_name("widgets", "en", {}) == "widgets"
    assert category_name(None, "en", {}) is None
    assert event_name(preset("double11", 2024), "zh") == "双十一"
    assert event_name(preset("double11", 2024), "en") == "Double 11"
