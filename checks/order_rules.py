"""The rules every clean order keeps, once: the clean-orders Great Expectations suite (`checks.suites.clean_orders`)
and the exact SQL on the rows a run wrote (`checks.orders.broken_order_rules`) are both made from
`CLEAN_ORDER_RULES`. Each rule names the reasons cleaning refuses a row under that would break it
(assets/orders/cleaning.py: REASONS). Plain Python: no Dagster, no GX."""

from dataclasses import dataclass

from pipelines.warehouse import COMPLETED

EXPECTATIONS = {
    "unique": "expect_column_values_to_be_unique",
    "not_null": "expect_column_values_to_not_be_null",
    "between": "expect_column_values_to_be_between",
    "in_set": "expect_column_values_to_be_in_set",
}


@dataclass(frozen=True)
class Parameter:
    """A value each run gives: a GX suite parameter, a named parameter (`$name`) of the SQL."""

    name: str


@dataclass(frozen=True)
class OrderRule:
    column: str
    kind: str  # a key of EXPECTATIONS: "between" keeps low..high, "in_set" one of `values`
    reasons: tuple[str, ...]  # why cleaning refuses a row that would break the rule
    low: float | Parameter | None = None
    high: float | Parameter | None = None
    values: Parameter | None = None
    completed_only: bool = False  # the rule holds for completed orders only

    @property
    def expectation(self) -> str:
        return EXPECTATIONS[self.kind]

    def gx(self) -> dict:
        """The rule as a GX expectation: its type and arguments."""
        spec = {"type": self.expectation, "column": self.column}
        if self.kind == "between":
            spec |= {"min_value": _gx(self.low), "max_value": _gx(self.high)}
        elif self.kind == "in_set":
            spec["value_set"] = _gx(self.values)
        if self.completed_only:
            spec |= {"row_condition": f'status=="{COMPLETED}"', "condition_parser": "pandas"}
        return spec

    def broken(self) -> str | None:
        """A DuckDB condition on the rows that break the rule; none for uniqueness, which
        `checks.orders.repeated_order_ids` checks across the warehouse. A null breaks an `in_set` rule."""
        if self.kind == "unique":
            return None
        column = self.column
        broken = {
            "not_null": f"{column} IS NULL",
            "between": f"NOT {column} BETWEEN {_sql(self.low)} AND {_sql(self.high)}",
            "in_set": f"coalesce({column} NOT IN (SELECT unnest({_sql(self.values)})), true)",
        }[self.kind]
        return f"status = '{COMPLETED}' AND {broken}" if self.completed_only else broken


def _gx(value):
    return {"$PARAMETER": value.name} if isinstance(value, Parameter) else value


def _sql(value) -> str:
    return f"${value.name}" if isinstance(value, Parameter) else repr(value)


# staging.orders: unique ids, a customer on every order, a completed order worth 0..max_amount (free orders
# happen; a return's amount is negative), days the run wrote, the shop's currency.
CLEAN_ORDER_RULES = (
    OrderRule("order_id", "unique", ("duplicate", "duplicate_order")),
    OrderRule("customer_id", "not_null", ("missing_customer",)),
    OrderRule("amount", "between", ("negative_amount", "outlier"), low=0, high=Parameter("max_amount"),
              completed_only=True),
    OrderRule("order_date", "in_set", ("bad_timestamp", "outside_history"), values=Parameter("days")),
    OrderRule("currency", "in_set", ("other_currency",), values=Parameter("currencies")),
)  # fmt: skip
