"""Software-defined assets, one module per stage. Group names double as job selections."""

ORDERS = "orders"
