"""The spool (issue 12): every result on disk before it is queued, each file deleted only
once its results are committed, a replay interrupted at any point losing nothing and
storing nothing twice, a bad line kept aside without holding up the others."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from scd_monitor.probes.base import ProbeResult
from scd_monitor.store import ResultRepository, ResultWriter, Store
from scd_monitor.store.spool import Journal, encode, read_spool_file
from tests.store.test_writer import FlakyStore, results

ROOT = Path(__file__).resolve().parents[2]

# A writer with a journal, killed (SIGKILL) by the test once it says how far it got:
# argv: spool directory, database URL ("down" for none), results to submit, results to
# see written before saying "ready".
CHILD = """
import sys, time
from pathlib import Path
import structlog
# The log goes to stderr: on stdout a writer thread's line could land between "ready" and
# its line break (print writes the two apart), and the test would wait for ever.
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from scd_monitor.store import ResultRepository, ResultWriter, Store
from scd_monitor.store.spool import Journal
from tests.store.test_writer import FlakyStore, results

directory, url, n, wait_for = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if url == "down":
    repository = FlakyStore()
    repository.down.set()
else:
    repository = ResultRepository(Store(url))
writer = ResultWriter(
    repository,
    journal=Journal(Path(directory)),
    batch_size=10,
    flush_interval=0.01,
    max_backoff=0.05,
    observe_write=lambda _seconds: time.sleep(0.05),  # slow enough to be killed halfway
)
writer.recover()
writer.start()
for r in results(n):
    writer.submit(r)
while writer.stats().written_total < wait_for:
    time.sleep(0.005)
print("ready", writer.stats().written_total, flush=True)
time.sleep(60)
"""


def killed_writer(spool: Path, url: str, *, submit: int, written: int) -> int:
    """Run :data:`CHILD`, SIGKILL it once it has written ``written`` results; how many
    it had written by then (at least)."""
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a full one blocks
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(spool), url, str(submit), str(written)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=ROOT,
        )
        try:
            assert child.stdout is not None
            line: list[str] = []
            while line[:1] != ["ready"]:
                text = child.stdout.readline()
                if not text:
                    child.wait(timeout=10)
                    errors.seek(0)
                    raise AssertionError(
                        f"the child ended early ({child.returncode}): {errors.read()[-4000:]}"
                    )
                line = text.split()
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL
            return int(line[1])
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def spool_results(spool: Path, batch: list[ProbeResult], name: str = "4242") -> Path:
    """A spool file as a release before the journal wrote it at a stop."""
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"results-20261101T000000000000Z-{name}.jsonl"
    path.write_bytes(b"".join(encode(r) for r in batch))
    return path


def files(spool: Path) -> list[Path]:
    return sorted(spool.glob("results-*.jsonl"))


def store_at(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path}/spool.db")
    store.create_schema()
    return store


def replay(spool: Path, repository: ResultRepository | FlakyStore, **options: float) -> bool:
    """One run of a writer over the spool: recover, write, close; whether all was written."""
    writer = ResultWriter(
        repository,  # type: ignore[arg-type]
        journal=Journal(spool),
        batch_size=10,
        flush_interval=0.01,
        max_backoff=0.05,
    )
    writer.recover()
    writer.start()
    return writer.close(timeout=options.get("timeout", 10))


def test_a_killed_writer_loses_nothing_it_was_given(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    killed_writer(spool, "down", submit=50, written=0)
    assert sum(len(f.read_text().splitlines()) for f in files(spool)) == 50
    store = store_at(tmp_path)
    assert replay(spool, ResultRepository(store))
    assert [r.started_at for r in ResultRepository(store).read()] == [
        r.started_at for r in results(50)
    ]
    assert files(spool) == []
    store.dispose()


def test_a_replay_killed_halfway_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool_results(spool, results(200))
    store = store_at(tmp_path)
    url = f"sqlite:///{tmp_path}/spool.db"
    # Killed while replaying: some results committed, the file still there.
    assert killed_writer(spool, url, submit=0, written=60) >= 60
    assert 60 <= len(ResultRepository(store).read()) < 200
    assert len(files(spool)) == 1
    assert replay(spool, ResultRepository(store))
    assert [r.started_at for r in ResultRepository(store).read()] == [
        r.started_at for r in results(200)
    ]
    assert files(spool) == []
    store.dispose()


def test_a_file_is_deleted_only_once_its_results_are_committed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool_results(spool, results(30))
    down = FlakyStore()
    down.down.set()
    assert not replay(spool, down, timeout=0.3)  # the database is still down
    assert len(files(spool)) == 1, "read, not committed: kept"
    up = FlakyStore()
    assert replay(spool, up)
    assert [r.started_at for b in up.batches for r in b] == [r.started_at for r in results(30)]
    assert files(spool) == []


def test_a_result_dropped_from_a_full_buffer_keeps_its_file(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    down = FlakyStore()
    down.down.set()
    writer = ResultWriter(
        down,  # type: ignore[arg-type]
        journal=Journal(spool),
        batch_size=5,
        flush_interval=0.01,
        buffer_limit=5,
        max_backoff=0.05,
    )
    writer.recover()
    writer.start()
    for r in results(8):
        writer.submit(r)
    assert writer.stats().dropped_total == 3
    writer.close(timeout=0.2)
    store = store_at(tmp_path)
    assert replay(spool, ResultRepository(store))
    assert len(ResultRepository(store).read()) == 8
    store.dispose()


def test_a_bad_line_is_kept_aside_and_does_not_hold_up_the_others(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    good = results(3)
    # Past the edge sanitiser: a check id with a lone surrogate, as a spool line has it.
    poison = json.loads(encode(good[2]))
    poison["check_id"] = "p/s/c\ud800"
    path = spool / "results-20261101T000000000000Z-1.jsonl"
    path.write_bytes(
        encode(good[0])
        + b'{"check_id": "cut in half by a power loss\n'
        + b"\xff\xfe not even UTF-8\n"
        + encode(good[1])
        + json.dumps(poison).encode("ascii")
        + b"\n"
    )
    store = store_at(tmp_path)
    assert replay(spool, ResultRepository(store))
    stored = ResultRepository(store).read()
    assert [r.check_id for r in stored] == ["p/s/c", "p/s/c", "p/s/c\ufffd"]
    assert "internal" in stored[2].outcome.details
    assert files(spool) == []
    aside = (spool / f"rejected-{path.name}").read_bytes().splitlines()
    assert len(aside) == 2
    assert aside[0].startswith(b'{"check_id": "cut in half')
    store.dispose()


def test_one_daemon_per_spool_directory(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first, second = Journal(spool), Journal(spool)
    assert first.open() == []
    assert second.open() == []
    assert second.errors_total == 1
    second.append(1, results(1)[0])  # off: nothing written, nothing raised
    first.append(1, results(1)[0])
    assert len(files(spool)) == 1
    assert first.close(0) == files(spool), "not committed: kept"
    third = Journal(spool)
    (found,) = third.open()
    assert [r.started_at for r in read_spool_file(found).results] == [results(1)[0].started_at]
    third.close(0)


def test_segments_rotate_and_each_goes_once_committed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    journal = Journal(spool, segment_results=4)
    journal.open()
    batch: list[ProbeResult] = [
        ProbeResult(
            r.check_id, r.kind, r.vantage, r.started_at + timedelta(hours=1), 0.1, r.outcome
        )
        for r in results(10)
    ]
    for seq, r in enumerate(batch, 1):
        journal.append(seq, r)
    journal.sync()
    assert [len(f.read_text().splitlines()) for f in files(spool)] == [4, 4, 2]
    journal.release(5)
    assert len(files(spool)) == 2, "the first segment (1-4) is committed"
    journal.release(8)
    assert len(files(spool)) == 1, "the open segment stays until closed"
    assert journal.close(10) == []
    assert files(spool) == []


def test_a_large_spool_is_queued_as_the_buffer_drains(tmp_path: Path) -> None:
    """What earlier runs left is read half a buffer at a time, not all at once."""
    spool = tmp_path / "spool"
    batch = results(12)
    for i in range(3):
        spool_results(spool, batch[4 * i : 4 * i + 4], name=f"{i}")
    up = FlakyStore()
    writer = ResultWriter(
        up,  # type: ignore[arg-type]
        journal=Journal(spool),
        batch_size=4,
        flush_interval=0.01,
        buffer_limit=10,
    )
    assert writer.recover() == 8, "two files of four: the queue is at half the buffer"
    assert writer.stats().spool_files == 3
    writer.start()
    assert writer.close(timeout=5)
    assert [r.started_at for b in up.batches for r in b] == [r.started_at for r in batch]
    assert writer.stats().dropped_total == 0
    assert files(spool) == []
