"""Everything that leaves the warehouse for a person or a sending tool (#28, #27): opt-outs in any spelling, the
one gate every outbox file passes, spreadsheet-safe cells, whole files, lists a marketer can send as they are."""

import base64
import errno
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.outreach.gate import match_opt_outs, refusals, rules_on_record
from assets.outreach.outbox import write_list
from pipelines.control import in_global_control
from pipelines.definitions import CAMPAIGNS_JOB, CUSTOMERS_JOB, OUTREACH_JOB, REPORTS_JOB, build_definitions, job_name
from pipelines.files import write_text_atomically
from pipelines.settings import CustomerIds
from pipelines.spreadsheets import spreadsheet_safe, write_spreadsheet_csv
from tests.conftest import ingest, read_outbox, shop, table
from tests.test_faults import buyers_shop, regular_buyers, run

FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})  # ASCII -> full-width forms


def test_an_opt_out_matches_its_customer_ignoring_case_width_and_spaces_and_reports_the_rest():
    # Case matters for ids (the default): AB12 and ab12 are two customers, and an exact match names one of them.
    customers = pl.Series(["C00006", "C00007", "C00008", "AB12", "ab12", "keep"])
    lines = ["c00006", "Ｃ００００７", "\u3000C00008\t", "ab12", "nobody", "c00006"]
    opt_outs = match_opt_outs(lines, customers, CustomerIds())
    assert opt_outs.customers == {"C00006", "C00007", "C00008", "ab12"}
    assert opt_outs.unmatched == ("nobody",)


def test_an_opt_out_in_another_case_holds_with_default_settings_and_unmatched_lines_are_reported(tmp_path):
    # The export says C00006 and C00007, the opt-out file c00006 and a full-width Ｃ００００７; case_sensitive is
    # left at its default (true). All four customers buy alike, so each list would hold all four.
    regular_buyers(tmp_path / "orders.csv", ["C00006", "C00007", "keep", "also"])
    (tmp_path / "opt_outs.csv").write_text("customer_id\nc00006\nＣ００００７\nC99999\n", encoding="utf-8")
    settings = buyers_shop(tmp_path, outreach={"opt_out_file": str(tmp_path / "opt_outs.csv")})
    ingest(settings, "2024-01-01", "2024-01-31")
    defs = build_definitions(settings)
    tags = {"dagster/asset_partition_range_start": "2024-01-21", "dagster/asset_partition_range_end": "2024-01-30"}
    with dg.DagsterInstance.ephemeral() as instance:
        reminded = defs.resolve_job_def(job_name(settings, OUTREACH_JOB)).execute_in_process(
            instance=instance, tags=tags
        )
        planned = defs.resolve_job_def(job_name(settings, CAMPAIGNS_JOB)).execute_in_process(
            instance=instance, partition_key="flash-2024"
        )
    reached = set()
    for name in ("outreach.repurchase_reminders", "outreach.care_messages", "outreach.campaign_targets"):
        reached |= set(table(settings, name)["customer_id"])
    for path in (settings.output / "outbox").rglob("*.*"):
        reached |= set(read_outbox(path)["customer_id"])
    assert reached == {"keep", "also"}
    # every step that reads the opt-outs says which line named nobody (in `regulars run`'s summary too)
    for result in (reminded, planned):
        for event in result.get_asset_materialization_events():
            metadata = event.materialization.metadata
            if "opt_outs_matching_nobody" in metadata:
                assert metadata["opt_outs_matching_nobody"].value == "***999"  # C99999, masked as ids are
    keys = {
        "/".join(e.materialization.asset_key.path[1:])  # the table, without the shop's prefix
        for r in (reminded, planned)
        for e in r.get_asset_materialization_events()
        if "opt_outs_matching_nobody" in e.materialization.metadata
    }
    assert keys == {"outreach/repurchase_reminders", "outreach/care_messages", "outreach/campaign_targets"}


# A tenth of the synthetic shop's customers opted out, in odd spellings, and a tenth in the global control group:
# any list of a few dozen customers would hold some of both, so a list that skipped the gate shows.
OPTED = [f"C{n:07d}" for n in range(7, 601, 10)]
SPELLED = [str.lower, lambda i: f" {i}\u3000", lambda i: i.translate(FULL_WIDTH)]


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    """A small shop run as the demo runs it: orders, customers, reminders for the autumn, its own audience's daily
    list, Double 11 and 12 planned, the overview (and its due list); opt-outs in odd spellings, a global control
    group."""
    settings = shop(tmp_path_factory.mktemp("outbox"), history_start="2024-01-01",
                    source={"kind": "synthetic", "seed": 7, "customers": 600},
                    outreach={"opt_out": [SPELLED[n % 3](i) for n, i in enumerate(OPTED)],
                              "frequency_cap_days": 10, "control": {"global_share": 0.1}},
                    audiences={"slipping": {"label": "流失边缘客户", "daily": True,
                                            "where": {"stage": ["at_risk", "churned"]}}})  # fmt: skip
    ingest(settings, "2024-01-01", "2024-12-31")
    defs = build_definitions(settings)
    tags = {"dagster/asset_partition_range_start": "2024-10-01", "dagster/asset_partition_range_end": "2024-12-31"}
    with dg.DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def(job_name(settings, CUSTOMERS_JOB)).execute_in_process(instance=instance).success
        assert (
            defs.resolve_job_def(job_name(settings, OUTREACH_JOB))
            .execute_in_process(instance=instance, tags=tags)
            .success
        )
        for event in ("double11-2024", "double12-2024"):
            assert (
                defs.resolve_job_def(job_name(settings, CAMPAIGNS_JOB))
                .execute_in_process(instance=instance, partition_key=event)
                .success
            )
        assert defs.resolve_job_def(job_name(settings, REPORTS_JOB)).execute_in_process(instance=instance).success
    return settings


def outbox_files(settings) -> dict[str, pl.DataFrame]:
    """Every file under the outbox, by its path there, as the warehouse names columns and values."""
    root = settings.output / "outbox"
    return {str(path.relative_to(root)): read_outbox(path) for path in sorted(root.rglob("*")) if path.is_file()}


def test_every_outbox_file_passes_the_gate(demo_like):
    files = outbox_files(demo_like)
    kinds = {name.split("/")[0] for name in files}
    assert {"due", "reminders", "audiences", "double11-2024", "double12-2024"} <= kinds
    contacts = pl.concat(
        table(demo_like, name).select("customer_id", "contact_date")
        for name in ("outreach.repurchase_reminders", "outreach.campaign_targets")
    )
    opted = [c for c in OPTED if c in set(table(demo_like, "core.rfm")["customer_id"])]
    assert opted  # the opt-outs name customers of this shop
    for name, rows in files.items():
        # a file that says neither who nor when cannot be checked: a new list must say both
        day = next((c for c in ("contact_date", "due_date") if c in rows.columns), None)
        assert "customer_id" in rows.columns and day, f"{name}: no customer_id or contact day"
        with duckdb.connect(str(demo_like.warehouse), read_only=True) as conn:
            refused = refusals(rows, rules_on_record(conn, demo_like, rows[day]), day).filter(
                pl.col("refused").is_not_null()
            )
        assert refused.is_empty(), f"{name}: {refused.head(3)}"
        # and by hand: no opted-out customer, nobody of the global control group, nobody twice inside the cap
        assert not set(rows["customer_id"]) & set(opted), name
        assert not rows.select(in_global_control(pl.col("customer_id"), demo_like.outreach.control)).to_series().any()
        near = (
            rows.select("customer_id", day)
            .join(contacts, on="customer_id")
            .filter((pl.col("contact_date") - pl.col(day)).dt.total_days().abs().is_between(1, 9))  # a 10-day cap
        )
        assert near.is_empty(), f"{name}: {near.head(3)}"


def test_cells_a_spreadsheet_would_evaluate_are_escaped_and_signed_numbers_kept():
    cells = {
        "\x00=1+2": "'\x00=1+2",  # a NUL a spreadsheet drops, then a formula
        "＝SUM(1)": "'＝SUM(1)", "＋1": "'＋1", "－1": "'－1", "＠SUM(1)": "'＠SUM(1)",  # full-width signs
        " =1+2": "' =1+2", "\u3000=1": "'\u3000=1",  # a space (or an ideographic one) before the sign
        "\tx": "'\tx", "=1": "'=1", "@A1": "'@A1", "-3+4": "'-3+4",  # OWASP's own list, arithmetic included
        "+8613800138000": "+8613800138000", "-12.5": "-12.5",  # a phone number, a signed number: nothing to run
        "王小明": "王小明", "a=b": "a=b",
    }  # fmt: skip
    escaped = spreadsheet_safe(pl.DataFrame({"cell": list(cells)}))["cell"].to_list()
    assert dict(zip(cells, escaped, strict=True)) == cells


def test_the_parquet_copy_has_the_csv_cells_and_a_phone_number_id_reaches_the_tool_unchanged(tmp_path):
    regular_buyers(tmp_path / "orders.csv", ["+8613800138000", "＝SUM(1)", "keep"])
    settings = buyers_shop(tmp_path)
    ingest(settings, "2024-01-01", "2024-01-31")
    run(settings, CAMPAIGNS_JOB, partition_key="flash-2024")
    folder = settings.output / "outbox" / "flash-2024"
    as_csv = pl.read_csv(folder / "targets.csv", infer_schema=False)
    as_parquet = pl.read_parquet(folder / "targets.parquet")
    assert as_csv.equals(as_parquet.select(pl.all().cast(pl.String)))
    assert sorted(as_csv["客户编号"]) == ["'＝SUM(1)", "+8613800138000", "keep"]


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    # A disk that fills up half-way through: the writer has written part of the file when it fails.
    path = tmp_path / "outbox" / "list.csv"
    write_spreadsheet_csv(pl.DataFrame({"customer_id": ["a", "b"]}), path)
    before = path.read_bytes()

    def half_then_full(frame, file, **options):
        with open(file, "w", encoding="utf-8") as written:
            written.write("customer_id\nc")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_csv", half_then_full)
    with pytest.raises(OSError, match="No space"):
        write_spreadsheet_csv(pl.DataFrame({"customer_id": ["c", "d"]}), path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["list.csv"]  # no temporary left behind

    report = tmp_path / "reports" / "overview.en.html"
    write_text_atomically(report, "<html>old</html>")
    monkeypatch.setattr(Path, "write_text", lambda self, text, **_: half_then_full(None, self))
    with pytest.raises(OSError, match="No space"):
        write_text_atomically(report, "<html>new</html>")
    assert report.read_text(encoding="utf-8") == "<html>old</html>"


def test_a_chinese_shops_lists_read_in_chinese_and_the_reminders_carry_their_messages(demo_like):
    root = demo_like.output / "outbox"
    chinese = re.compile(r"[\u4e00-\u9fff]")
    for path in root.rglob("*.csv"):
        sent = pl.read_csv(path, infer_schema=False)
        assert all(chinese.search(header) for header in sent.columns), f"{path.name}: {sent.columns}"
        for column in {"客户类别", "阶段", "人群", "渠道", "生命周期阶段", "联系原因"} & set(sent.columns):
            names = set(sent[column].drop_nulls())
            # every coded value in Chinese; "App" is how Chinese readers write the app channel
            assert all(chinese.search(name) or name == "App" for name in names), f"{path.name}: {column} {names}"
    # each day's reminders are in the outbox with their message, as the warehouse has them (held-out ones not)
    days = sorted(root.glob("reminders/reminders-*.csv"))
    # a run over 10-01 .. 12-31 makes the day-by-day lists of its last 14 days (outreach.lists_for_last_days)
    assert [p.name for p in days[:2]] == ["reminders-2024-12-18.csv", "reminders-2024-12-19.csv"] and len(days) == 14
    files = pl.concat(read_outbox(p).select("customer_id", "contact_date", "message") for p in days)
    reminded = table(demo_like, "outreach.repurchase_reminders").filter(~pl.col("held_out"))
    assert files.sort(pl.all()).equals(reminded.select(files.columns).sort(pl.all()))
    assert files.height > 0
    messages = files["message"].str.replace_all(re.escape(demo_like.name), "")  # the shop's name is its own
    assert not messages.str.contains("[A-Za-z]").any(), messages.filter(messages.str.contains("[A-Za-z]")).head(3)


def test_the_overview_carries_its_due_list_so_the_link_works_when_the_report_is_mailed(demo_like):
    report = next((demo_like.output / "reports").glob("overview-*.html")).read_text(encoding="utf-8")
    href, name = re.search(r'<a href="data:text/csv;base64,([^"]+)" download="([^"]+)"', report).groups()
    assert base64.b64decode(href) == (demo_like.output / "outbox" / "due" / name).read_bytes()
    assert all(href.startswith(("data:", "file:", "https:", "#")) for href in re.findall(r'href="([^"]*)"', report))


@pytest.fixture(scope="module")
def sent_lists(demo_like):
    """The demo-like shop's outbox lists, one per kind (the due list, each day's reminders together, each event's
    targets), as the warehouse names columns and values, each with its day column; and the gate's rules on
    record, every contact of every day included."""
    kinds = {}
    for name, rows in outbox_files(demo_like).items():
        if name.endswith(".csv"):  # the Parquet copies hold the same cells
            kinds.setdefault(name.split("/")[0], []).append(rows)
    lists = {}
    for kind, frames in kinds.items():
        rows = pl.concat(frames)
        lists[kind] = (rows, next(c for c in ("contact_date", "due_date") if c in rows.columns))
    with duckdb.connect(str(demo_like.warehouse), read_only=True) as conn:
        rules = rules_on_record(conn, demo_like, pl.Series([date(2024, 1, 1), date(2024, 12, 31)]))
        customers = conn.sql("SELECT DISTINCT customer_id FROM staging.orders").pl()["customer_id"]
    return lists, rules, customers


SPELLINGS = st.tuples(
    st.sampled_from([str, str.lower, str.swapcase, str.title]),
    st.booleans(),  # full-width letters and digits
    st.sampled_from(["", " ", "\t", "\u3000", "\u200b", "  \u3000"]),
    st.sampled_from(["", " ", "\t", "\u3000", "\u200b"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_opted_out_customer_in_any_outbox_file_whatever_the_spelling(sent_lists, tmp_path, data):
    files, rules, customers = sent_lists
    on_lists = sorted(set().union(*(set(rows["customer_id"]) for rows, _ in files.values())))
    chosen = data.draw(st.lists(st.sampled_from(on_lists), min_size=1, max_size=4, unique=True))
    lines = []
    for customer in chosen:
        case, wide, before, after = data.draw(SPELLINGS)
        spelled = case(customer)
        lines.append(before + (spelled.translate(FULL_WIDTH) if wide else spelled) + after)
    opt_outs = match_opt_outs(lines, customers, CustomerIds())  # case-sensitive ids: the default
    assert opt_outs.unmatched == ()  # each line names its customer
    for kind, (rows, day) in files.items():
        path = tmp_path / f"{kind}.csv"
        write_list(rows, replace(rules, opt_outs=opt_outs), path, day, "zh")
        assert not set(read_outbox(path)["customer_id"]) & set(chosen), (kind, lines)
