"""The X-Road usage repository over SQLite and PostgreSQL: pages counted in 15-minute
buckets with the cursor moved in the same transaction, so that a page is counted once
whatever is replayed, raced or cut short."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from scd_monitor.errors import StoreError
from scd_monitor.store import Store, UsageBucket, UsageRepository, schema
from scd_monitor.store.tables import xroad_usage
from scd_monitor.store.usage import (
    BUCKET,
    DURATION_BUCKETS_MS,
    MAX_TEXT,
    N_HISTOGRAM,
    aggregate,
    bucket_start,
)
from scd_monitor.xroad.identifiers import ClientId, ServiceId
from scd_monitor.xroad.opmon import OperationalRecord
from tests.store.fixtures.databases import load_v1_sqlite

SOURCE = "xroad-co"
SS = "CO/GOB/899999/ss1"
# 2026-03-01 05:00 UTC: midnight in Bogotá (UTC−5), a month boundary there.
T = int(datetime(2026, 3, 1, 5, 0, tzinfo=UTC).timestamp())
FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)

CARPETA = ClientId("CO", "GOB", "8999990001", "CARPETA")
AUTH = ServiceId(ClientId("CO", "GOB", "900000001", "AUTH"), "login", "v1")
PAGOS = ServiceId(ClientId("CO", "COM", "900000002", "PAGOS"), "pagar")


def rec(
    ts: int,
    *,
    side: str = "Producer",
    ok: bool = True,
    client: ClientId | None = CARPETA,
    service: ServiceId | None = AUTH,
    ms: int | None = 40,
    fault: str | None = None,
    sizes: tuple[int | None, int | None] = (100, 1000),
) -> OperationalRecord:
    start = ts * 1000 + 17
    return OperationalRecord(
        monitoring_data_ts=ts,
        side=side,  # type: ignore[arg-type]
        succeeded=ok,
        client=client,
        service=service,
        request_in_ts=start if ms is not None else None,
        response_out_ts=start + ms if ms is not None else None,
        fault_code=fault,
        request_size=sizes[0],
        response_size=sizes[1],
    )


@pytest.fixture
def usage(store: Store) -> UsageRepository:
    repo = UsageRepository(store)
    assert repo.set_cursor(SOURCE, SS, T)
    return repo


def all_buckets(repo: UsageRepository) -> list[UsageBucket]:
    return repo.buckets(FAR_PAST, FAR_FUTURE)


def total(repo: UsageRepository) -> int:
    return sum(b.count for b in all_buckets(repo))


def mixed_page(start: int, n: int) -> list[OperationalRecord]:
    """``n`` records over 20 minutes from ``start``, with every field varying."""
    services = [AUTH, PAGOS, None]
    out = []
    for i in range(n):
        ok = i % 7 != 0
        out.append(
            rec(
                start + (i * 1200) // n,
                side="Producer" if i % 3 else "Client",
                ok=ok,
                service=services[i % 3],
                client=None if i % 11 == 0 else CARPETA,
                ms=None if i % 13 == 0 else (i * 37) % 70000,
                fault=None if ok else ["Server.ServerProxy.ServiceFailed", "Client.X"][i % 2],
                sizes=(i, None if i % 5 == 0 else 2 * i),
            )
        )
    return out


# -- counting ------------------------------------------------------------------------------


def test_a_page_is_counted_exactly_and_moves_the_cursor(usage: UsageRepository) -> None:
    records = mixed_page(T, 1000)

    assert usage.apply_page(SOURCE, SS, records, records_from=T, next_from=T + 1200, refused=3)

    buckets = all_buckets(usage)
    assert sum(b.count for b in buckets) == len(records)
    assert sum(b.request_bytes for b in buckets) == sum(r.request_size or 0 for r in records)
    assert sum(b.response_bytes for b in buckets) == sum(r.response_size or 0 for r in records)
    timed = [r.duration_ms for r in records if r.duration_ms is not None]
    assert sum(b.duration_count for b in buckets) == len(timed)
    assert sum(b.duration_sum_ms for b in buckets) == sum(timed)
    assert all(sum(b.histogram) == b.duration_count for b in buckets)
    # Per key, the counts are those of the records given.
    by_key = Counter(
        (
            bucket_start(r.monitoring_data_ts),
            r.side,
            str(r.client or ""),
            str(r.service or ""),
            r.succeeded,
            r.fault_code or "",
        )
        for r in records
    )
    stored = {
        (b.bucket_start, b.side, b.client, b.service, b.succeeded, b.fault_code): b.count
        for b in buckets
    }
    assert stored == dict(by_key)
    assert {b.provider_member for b in buckets if b.service == str(PAGOS)} == {"CO/COM/900000002"}
    assert {b.provider_member for b in buckets if b.service == ""} == {""}
    assert usage.cursor(SOURCE, SS) == T + 1200
    (cursor,) = usage.cursors()
    assert (cursor.source, cursor.security_server, cursor.next_records_from) == (
        SOURCE,
        SS,
        T + 1200,
    )
    assert (cursor.records_total, cursor.refused_total) == (1000, 3)
    assert cursor.updated_at.tzinfo is not None


def test_buckets_are_15_minutes_aligned_to_the_epoch(usage: UsageRepository) -> None:
    stamps = [T - 1, T, T + 899, T + 900, T + 1799, T + 1800 + 450]
    usage.apply_page(SOURCE, SS, [rec(ts) for ts in stamps], records_from=T - 1, next_from=T + 2251)
    # The records_from above is not the cursor (T): nothing was counted.
    assert all_buckets(usage) == []
    usage.set_cursor(SOURCE, SS, T - 1, replace=True)
    assert usage.apply_page(
        SOURCE, SS, [rec(ts) for ts in stamps], records_from=T - 1, next_from=T + 2251
    )

    counts = {b.bucket_start: b.count for b in all_buckets(usage)}
    start = datetime.fromtimestamp(T, UTC)
    assert counts == {
        start - BUCKET: 1,  # 04:59:59 UTC: February in Bogotá
        start: 2,
        start + BUCKET: 2,
        start + 2 * BUCKET: 1,
    }
    assert all(
        b.minute % 15 == 0 and b.second == 0 and b.microsecond == 0 and b.tzinfo is not None
        for b in counts
    )
    assert bucket_start(T + 899) == start and bucket_start(0).timestamp() == 0
    # A month in Bogotá (from its midnight, 05:00 UTC) gets exactly its records.
    march = usage.buckets(start, start + timedelta(days=31))
    assert sum(b.count for b in march) == 5


def test_the_duration_histogram_uses_le_bounds(usage: UsageRepository) -> None:
    durations = [0, 1, 2, 3, 1000, 1001, 60000, 60001, 10**9]
    records = [rec(T, ms=ms) for ms in durations]
    records += [rec(T, ms=None), rec(T, ms=-5)]  # no duration: counted, not timed
    assert usage.apply_page(SOURCE, SS, records, records_from=T, next_from=T + 1)

    (bucket,) = all_buckets(usage)
    assert len(bucket.histogram) == N_HISTOGRAM == len(DURATION_BUCKETS_MS) + 1
    expected = [0] * N_HISTOGRAM
    for index in (0, 0, 1, 2, 9, 10, 14, 15, 15):  # ≤1, ≤1, ≤2, ≤5, ≤1000, ≤2000, ≤60000, +Inf
        expected[index] += 1
    assert list(bucket.histogram) == expected
    assert (bucket.count, bucket.duration_count) == (11, 9)
    assert bucket.duration_sum_ms == sum(durations)


def test_pages_landing_in_one_bucket_add_up(usage: UsageRepository) -> None:
    """The second page's rows conflict with the first's: the UPSERT adds to them."""
    first = [rec(T + s, ms=3) for s in range(10)] + [rec(T + 5, ok=False, fault="Client.X")]
    second = [rec(T + 10 + s, ms=700) for s in range(5)] + [rec(T + 12, side="Client")]
    assert usage.apply_page(SOURCE, SS, first, records_from=T, next_from=T + 10)
    assert usage.apply_page(SOURCE, SS, second, records_from=T + 10, next_from=T + 20)

    rows = {(b.side, b.succeeded): b for b in all_buckets(usage)}
    assert set(rows) == {("Producer", True), ("Producer", False), ("Client", True)}
    ok = rows["Producer", True]
    assert ok.count == 15
    assert ok.duration_sum_ms == 10 * 3 + 5 * 700
    assert ok.histogram[2] == 10  # 3 ms: (2, 5]
    assert ok.histogram[9] == 5  # 700 ms: (500, 1000]
    assert sum(ok.histogram) == 15
    assert (ok.request_bytes, ok.response_bytes) == (1500, 15000)
    assert rows["Producer", False].count == 1 and rows["Client", True].count == 1
    (cursor,) = usage.cursors()
    assert (cursor.next_records_from, cursor.records_total) == (T + 20, 17)


def test_a_replayed_page_is_refused_and_changes_nothing(usage: UsageRepository) -> None:
    page = mixed_page(T, 200)
    assert usage.apply_page(SOURCE, SS, page, records_from=T, next_from=T + 1200)
    before = (all_buckets(usage), usage.cursors())

    assert not usage.apply_page(SOURCE, SS, page, records_from=T, next_from=T + 1200)
    assert not usage.apply_page(SOURCE, SS, page, records_from=T, next_from=T + 600)

    assert (all_buckets(usage), usage.cursors()) == before
    assert total(usage) == 200


def test_a_page_without_a_cursor_or_from_elsewhere_is_refused(usage: UsageRepository) -> None:
    assert not usage.apply_page(SOURCE, "CO/GOB/1/other", [rec(T)], records_from=T, next_from=T + 1)
    assert not usage.apply_page(SOURCE, SS, [rec(T)], records_from=T + 1, next_from=T + 2)
    assert all_buckets(usage) == []
    assert usage.cursor(SOURCE, "CO/GOB/1/other") is None
    assert [c.next_records_from for c in usage.cursors()] == [T]


def test_a_crash_before_the_commit_counts_nothing(
    usage: UsageRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after the buckets were written and the cursor moved, before the
    commit: both are rolled back, and the page asked for again is counted once."""
    page = mixed_page(T, 300)
    written = UsageRepository._add

    def write_then_die(self: UsageRepository, conn: object, rows: list[dict[str, object]]) -> None:
        written(self, conn, rows)  # type: ignore[arg-type]
        inside = conn.execute(select(xroad_usage.c.count)).all()  # type: ignore[attr-defined]
        assert sum(c for (c,) in inside) == 300  # written, not yet committed
        raise RuntimeError("power cut")

    monkeypatch.setattr(UsageRepository, "_add", write_then_die)
    with pytest.raises(RuntimeError, match="power cut"):
        usage.apply_page(SOURCE, SS, page, records_from=T, next_from=T + 1200)
    assert all_buckets(usage) == []
    assert usage.cursor(SOURCE, SS) == T
    assert usage.cursors()[0].records_total == 0

    monkeypatch.undo()
    assert usage.apply_page(SOURCE, SS, page, records_from=T, next_from=T + 1200)
    assert total(usage) == 300
    assert usage.cursor(SOURCE, SS) == T + 1200


def test_two_writers_of_one_server_count_a_page_once(store: Store, store_url: str) -> None:
    """Two daemons (each its own engine) apply the same page at once: one wins."""
    UsageRepository(store).set_cursor(SOURCE, SS, T)
    page = mixed_page(T, 2000)
    others = [Store(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(others))
    outcomes: list[object] = [None] * len(others)

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = UsageRepository(others[i]).apply_page(
                SOURCE, SS, page, records_from=T, next_from=T + 1200
            )
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(others))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes, key=str) == [False, False, False, True]
        assert total(UsageRepository(store)) == 2000
        assert UsageRepository(store).cursors()[0].records_total == 2000
    finally:
        for other in others:
            other.dispose()


def test_servers_and_sources_are_kept_apart(usage: UsageRepository) -> None:
    usage.set_cursor(SOURCE, "CO/GOB/899999/ss2", T)
    usage.set_cursor("xroad-test", SS, T)
    assert usage.apply_page(SOURCE, SS, [rec(T)], records_from=T, next_from=T + 1)
    assert usage.apply_page(
        SOURCE, "CO/GOB/899999/ss2", [rec(T), rec(T)], records_from=T, next_from=T + 1
    )
    assert usage.apply_page("xroad-test", SS, [rec(T)] * 4, records_from=T, next_from=T + 1)

    rows = {(b.source, b.security_server): b.count for b in all_buckets(usage)}
    assert rows == {
        (SOURCE, SS): 1,
        (SOURCE, "CO/GOB/899999/ss2"): 2,
        ("xroad-test", SS): 4,
    }
    only = usage.buckets(FAR_PAST, FAR_FUTURE, source="xroad-test")
    assert [(b.source, b.count) for b in only] == [("xroad-test", 4)]
    assert [(c.source, c.security_server) for c in usage.cursors()] == [
        (SOURCE, SS),
        (SOURCE, "CO/GOB/899999/ss2"),
        ("xroad-test", SS),
    ]


def test_totals_sum_the_buckets_in_the_database(usage: UsageRepository) -> None:
    usage.set_cursor(SOURCE, "CO/GOB/899999/ss2", T)
    page = mixed_page(T, 600)
    assert usage.apply_page(SOURCE, SS, page, records_from=T, next_from=T + 1200)
    assert usage.apply_page(
        SOURCE, "CO/GOB/899999/ss2", page[:100], records_from=T, next_from=T + 1200
    )
    start = datetime.fromtimestamp(T, UTC)
    end = start + timedelta(minutes=15)

    totals = usage.totals(start, end)
    buckets = usage.buckets(start, end)

    def key(b: UsageBucket) -> tuple[object, ...]:
        return (b.source, b.side, b.client, b.service, b.succeeded, b.fault_code)

    expected: dict[tuple[object, ...], list[int]] = {}
    for b in buckets:
        acc = expected.setdefault(key(b), [0] * (5 + N_HISTOGRAM))
        values = [b.count, b.duration_count, b.duration_sum_ms, b.request_bytes]
        for i, v in enumerate([*values, b.response_bytes, *b.histogram]):
            acc[i] += v
    got = {
        key(t): [
            t.count,
            t.duration_count,
            t.duration_sum_ms,
            t.request_bytes,
            t.response_bytes,
            *t.histogram,
        ]
        for t in totals
    }
    assert got == expected
    assert len(totals) < len(buckets)
    assert all(t.security_server == "" and start <= t.bucket_start < end for t in totals)
    assert all(isinstance(t.duration_sum_ms, int) for t in totals)  # not Decimal
    in_period = [r for r in [*page, *page[:100]] if r.monitoring_data_ts < T + 900]
    assert sum(t.count for t in totals) == len(in_period) < 700


def test_retention_deletes_old_buckets_only(usage: UsageRepository) -> None:
    stamps = [T, T + 900, T + 1800, T + 86400]
    assert usage.apply_page(
        SOURCE, SS, [rec(ts) for ts in stamps], records_from=T, next_from=T + 86401
    )
    cutoff = datetime.fromtimestamp(T + 1800, UTC)

    assert usage.delete_before(cutoff) == 2

    assert [b.bucket_start for b in all_buckets(usage)] == [
        cutoff,
        datetime.fromtimestamp(T + 86400, UTC),
    ]
    assert usage.delete_before(cutoff) == 0
    assert usage.cursor(SOURCE, SS) == T + 86401  # cursors are kept


# -- cursors and arguments ------------------------------------------------------------------


def test_set_cursor_keeps_an_existing_one_unless_replaced(usage: UsageRepository) -> None:
    assert not usage.set_cursor(SOURCE, SS, T - 3600)
    assert usage.cursor(SOURCE, SS) == T
    assert usage.apply_page(SOURCE, SS, [rec(T)] * 3, records_from=T, next_from=T + 60)

    assert usage.set_cursor(SOURCE, SS, T - 3600, replace=True)

    (cursor,) = usage.cursors()
    assert (cursor.next_records_from, cursor.records_total) == (T - 3600, 3)
    assert usage.cursor(SOURCE, "nowhere") is None


def test_bad_arguments_are_refused(usage: UsageRepository) -> None:
    with pytest.raises(ValueError, match="must be after"):
        usage.apply_page(SOURCE, SS, [rec(T)], records_from=T, next_from=T)
    with pytest.raises(ValueError, match="naive"):
        usage.buckets(datetime(2026, 3, 1), FAR_FUTURE)
    with pytest.raises(ValueError, match="naive"):
        usage.delete_before(datetime(2026, 3, 1))
    assert usage.cursor(SOURCE, SS) == T


def test_long_texts_are_shortened_and_kept_apart(usage: UsageRepository) -> None:
    long_a = "Server.ServerProxy." + "a" * 600 + "-1"
    long_b = "Server.ServerProxy." + "a" * 600 + "-2"
    long_server = "CO/GOB/899999/" + "s" * 300
    usage.set_cursor(SOURCE, long_server, T)
    records = [rec(T, ok=False, fault=long_a), rec(T, ok=False, fault=long_b)] * 2
    assert usage.apply_page(SOURCE, long_server, records, records_from=T, next_from=T + 1)

    buckets = all_buckets(usage)
    assert sorted(b.count for b in buckets) == [2, 2]
    codes = {b.fault_code for b in buckets}
    assert len(codes) == 2
    assert all(len(c) == MAX_TEXT and c.startswith("Server.ServerProxy.aaa") for c in codes)
    assert {len(b.security_server) for b in buckets} == {MAX_TEXT}
    assert usage.cursor(SOURCE, long_server) == T + 1


def test_an_empty_page_moves_the_cursor(usage: UsageRepository) -> None:
    assert usage.apply_page(SOURCE, SS, [], records_from=T, next_from=T + 300, refused=2)
    assert all_buckets(usage) == []
    (cursor,) = usage.cursors()
    assert (cursor.next_records_from, cursor.records_total, cursor.refused_total) == (
        T + 300,
        0,
        2,
    )


# -- cost ----------------------------------------------------------------------------------


def realistic_page(start: int, n: int = 10_000) -> Sequence[OperationalRecord]:
    clients = [ClientId("CO", "GOB", str(800000000 + i), f"S{i % 3}") for i in range(200)]
    services = [
        ServiceId(ClientId("CO", "GOB", str(900000000 + i % 20), "SVC"), f"svc{i}", "v1")
        for i in range(50)
    ]
    pairs = [(clients[(i * 7) % 200], services[(i * 13) % 50]) for i in range(300)]
    return [
        rec(
            start + (i * 840) // n,
            side="Client" if i % 2 else "Producer",
            ok=i % 20 != 0,
            client=pairs[i % 300][0],
            service=pairs[i % 300][1],
            ms=(i * 7919) % 3000,
            fault=None if i % 20 else "Server.ServerProxy.ServiceFailed",
        )
        for i in range(n)
    ]


def test_a_10000_record_page_aggregates_in_memory_first(tmp_path: Path) -> None:
    """Counted per bucket and key before it reaches the database (far fewer rows than
    records), and written well within 0.1 ms a record on SQLite."""
    store = Store(f"sqlite:///{tmp_path}/cost.db")
    try:
        store.create_schema()
        repo = UsageRepository(store)
        repo.set_cursor(SOURCE, SS, T)
        page = realistic_page(T)
        rows = aggregate(SOURCE, SS, page)
        assert len(rows) <= 1200
        assert sum(r["count"] for r in rows) == len(page)
        started = time.perf_counter()
        assert repo.apply_page(SOURCE, SS, page, records_from=T, next_from=T + 840)
        elapsed = time.perf_counter() - started
        assert total(repo) == len(page)
        assert elapsed / len(page) < 100e-6, f"{elapsed / len(page) * 1e6:.1f} µs a record"
    finally:
        store.dispose()


def test_a_database_before_the_usage_tables_reads_as_no_usage(tmp_path: Path) -> None:
    """Reading commands open an older database as it is (no upgrade): it has no usage
    tables, and reads as a database that never collected any."""
    url = load_v1_sqlite(tmp_path / "v1.db")
    store = Store.open_existing(url)
    try:
        repo = UsageRepository(store)
        assert repo.buckets(FAR_PAST, FAR_FUTURE) == []
        assert repo.totals(FAR_PAST, FAR_FUTURE) == []
        assert repo.cursors() == []
        assert repo.cursor(SOURCE, SS) is None
        assert schema.current(store) is None  # still not upgraded
    finally:
        store.dispose()


def test_a_failing_database_is_still_an_error(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/store.db")
    try:
        store.create_schema()
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE scd_xroad_usage RENAME COLUMN hist_inf TO broken")
        with pytest.raises(StoreError, match="reading X-Road usage failed"):
            UsageRepository(store).buckets(FAR_PAST, FAR_FUTURE)
    finally:
        store.dispose()
