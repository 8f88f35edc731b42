"""Customer buckets: the ingest's Parquet files per bucket and day, and the customer step computed bucket by bucket."""

import hashlib
import shutil

import polars as pl

from assets.orders.buckets import bucket_of, buckets_folder
from tests.conftest import ingest, shop, table


def bucket_files(settings) -> dict[str, pl.DataFrame]:
    """Every bucket file, by its path under the shop's buckets folder."""
    folder = buckets_folder(settings.warehouse, settings.id, settings.buckets)
    return {str(path.relative_to(folder)): pl.read_parquet(path) for path in sorted(folder.rglob("*"))
            if path.is_file()}  # fmt: skip


def test_the_ingest_puts_every_clean_order_in_the_file_of_its_customers_bucket_and_day(tmp_path):
    settings = shop(tmp_path, buckets=4)
    ingest(settings, "2024-11-01", "2024-11-30")
    files = bucket_files(settings)
    orders = table(settings, "staging.orders")
    # the bucket by an independent computation: BLAKE2b, 8-byte digest of the id's UTF-8 bytes, big-endian, mod 4
    bucket = {
        customer: int.from_bytes(hashlib.blake2b(customer.encode("utf-8"), digest_size=8).digest(), "big") % 4
        for customer in orders["customer_id"]
    }
    expected = {f"bucket={bucket[customer]:02d}/day={day}.parquet" for customer, day in
                orders.select("customer_id", "order_date").iter_rows()}  # fmt: skip
    assert files.keys() == expected
    for name, rows in files.items():
        assert {
            f"bucket={bucket[c]:02d}/day={d}.parquet" for c, d in rows.select("customer_id", "order_date").rows()
        } == {name}
    # together the files hold staging.orders, each order once
    together = pl.concat(files.values())
    assert together["order_id"].is_unique().all()
    assert together.sort(pl.all()).equals(orders)
    assert len({name.split("/")[0] for name in files}) == 4 and len(files) > 30


def test_rerunning_days_replaces_their_bucket_files(tmp_path):
    settings = shop(tmp_path, buckets=3)
    ingest(settings, "2024-11-01", "2024-11-10")
    before = bucket_files(settings)
    folder = buckets_folder(settings.warehouse, settings.id, 3)
    # a wrong file: a day's bucket-0 orders copied into bucket 1 (a new file, or over the right one), which a
    # re-run must remove or replace
    some_day = next(name for name in before if name.startswith("bucket=00/"))
    shutil.copy(folder / some_day, folder / some_day.replace("bucket=00", "bucket=01"))
    ingest(settings, "2024-11-01", "2024-11-10")
    after = bucket_files(settings)
    assert after.keys() == before.keys()
    for name, rows in before.items():
        assert after[name].equals(rows), name
    assert not list(folder.rglob("*.tmp"))


def test_one_bucket_writes_no_bucket_files(tmp_path):
    settings = shop(tmp_path)
    ingest(settings, "2024-11-01", "2024-11-03")
    assert settings.buckets == 1 and not (tmp_path / "buckets").exists()


def test_a_customers_bucket_is_blake2b_of_the_ids_utf8_bytes_mod_the_count():
    ids = pl.Series(["张三", "C0000001", "c0000001", "ab 12", "C0000001"])
    # by hand with hashlib, as a worker in another language would compute it
    expected = [int.from_bytes(hashlib.blake2b(i.encode("utf-8"), digest_size=8).digest(), "big") % 7 for i in ids]
    assert bucket_of(ids, 7).to_list() == expected
    assert len(set(expected)) > 1
