"""Offers by product role (`assets.customers.products`): what each customer of a list is offered. Plain Polars.

Retention practice: churned customers and one-time buyers are the price-sensitive ones a promotion can win back,
so they are offered traffic products (those that bring first orders), then marginal ones, at the deal discount;
repeat customers are kept with profit products (those returning customers buy) at a small discount. The
products come from the customer's main category first, then from the whole shop.
"""

from datetime import date

import polars as pl

from assets.customers.products import items_of, product_roles
from pipelines.settings import OfferSettings

# offer kind -> the roles it offers, in order, and the share its products are ranked by
OFFER_ROLES = {
    "traffic_deal": (("traffic", "marginal"), "first_order_share"),
    "profit_discount": (("profit",), "returning_order_share"),
}
OFFER_KINDS = tuple(OFFER_ROLES)
OFFER_COLUMNS = {"offer_kind": pl.String, "offer_discount": pl.Float64, "suggested_products": pl.String}


def offer_kind() -> pl.Expr:
    """A customer's offer kind from their `stage` and `purchase_days`: a deal on traffic products for churned
    customers and one-time buyers, a small discount on profit products for repeat customers."""
    price_sensitive = (pl.col("stage") == "churned") | (pl.col("purchase_days") <= 1)
    return pl.when(price_sensitive).then(pl.lit("traffic_deal")).otherwise(pl.lit("profit_discount"))


def roles_with_categories(orders: pl.DataFrame, lines: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Every item's role as of `as_of` (`product_roles`, from completed `orders` with `category` and their
    `lines`) with its name and category (a product's most frequent one; a category is its own)."""
    kind, items = items_of(lines, orders)
    roles = product_roles(orders, items, as_of).join(items.select("item", "name").unique("item"), on="item")
    if kind == "category":
        return roles.with_columns(category=pl.col("item"))
    categories = lines.group_by(item="sku").agg(category=pl.col("category").drop_nulls().mode().sort().first())
    return roles.join(categories, on="item", how="left")


def with_offers(
    rows: pl.DataFrame, customers: pl.DataFrame, roles: pl.DataFrame, settings: OfferSettings
) -> pl.DataFrame:
    """`rows` (a `customer_id` each) with `offer_kind`, `offer_discount` and `suggested_products` (up to
    `settings.products` names, '; '-separated, null where the shop has no product of the kind's roles), from
    `customers` (customer_id, stage, purchase_days, main_category) and `roles` (`roles_with_categories`)."""
    discounts = {"traffic_deal": settings.deal_discount, "profit_discount": settings.small_discount}
    kinds = customers.select("customer_id", "main_category", offer_kind=offer_kind())
    wanted = kinds.select("main_category", "offer_kind").unique()
    ranked = []
    for kind, (kind_roles, share) in OFFER_ROLES.items():
        offered = roles.filter(pl.col("role").is_in(kind_roles)).with_columns(
            role_rank=pl.col("role").replace_strict({r: n for n, r in enumerate(kind_roles)}, return_dtype=pl.Int8),
            share=pl.col(share),
        )
        ranked.append(
            wanted.filter(pl.col("offer_kind") == kind)
            .join(offered, how="cross")
            .sort(
                pl.col("category") != pl.col("main_category"), "role_rank", -pl.col("share"), "item", nulls_last=True
            )  # fmt: skip
            .group_by("main_category", "offer_kind", maintain_order=True)
            .agg(suggested_products=pl.col("name").head(settings.products).str.join("; "))
        )
    suggested = pl.concat(ranked) if ranked else pl.DataFrame()
    offers = kinds.join(suggested, on=["main_category", "offer_kind"], how="left", nulls_equal=True)
    return rows.join(
        offers.select("customer_id", "offer_kind", "suggested_products"), on="customer_id", how="left"
    ).with_columns(offer_discount=pl.col("offer_kind").replace_strict(discounts, default=None, return_dtype=pl.Float64))
