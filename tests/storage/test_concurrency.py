"""Concurrent claimers never share a job; a killed writer leaves a consistent database."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from pathlib import Path

from storage import JobStatus, Store
from tests.storage.support import submit

ROOT = Path(__file__).resolve().parents[2]
JOBS = 200


async def _spawn(mode: str, data_dir: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.storage.workers",
        mode,
        str(data_dir),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), timeout=30) == b"ready\n"
    return proc


async def _claim_all(store: Store) -> list[int]:
    claimed = []
    while (job := await store.jobs.claim_next()) is not None:
        claimed.append(job.id)
        await store.jobs.finish(job.id, store.files.result_path(job.id))
    return claimed


async def test_two_processes_claim_each_job_exactly_once(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as store:
        ids = [(await submit(store, user_id=n % 10)).id for n in range(JOBS)]

    procs = [await _spawn("claim", tmp_path) for _ in range(2)]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
    outputs = await asyncio.wait_for(asyncio.gather(*(proc.communicate() for proc in procs)), timeout=60)
    first, second = (json.loads(stdout.decode().splitlines()[-1]) for stdout, _ in outputs)

    assert [proc.returncode for proc in procs] == [0, 0]
    assert sorted(first + second) == ids
    assert first
    assert second
    async with Store.open(tmp_path) as store:
        stats = await store.stats()
        assert stats.jobs_by_status[JobStatus.DONE] == JOBS


async def test_two_connections_in_one_process_claim_each_job_exactly_once(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as one, Store.open(tmp_path, recover=False) as two:
        ids = [(await submit(one, user_id=n % 7)).id for n in range(JOBS)]

        first, second = await asyncio.gather(_claim_all(one), _claim_all(two))

    assert sorted(first + second) == ids
    assert not set(first) & set(second)


async def test_process_killed_mid_transaction_leaves_consistent_database(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as store:
        committed = [(await submit(store, user_id=n)).id for n in range(5)]

    writer = await _spawn("write", tmp_path)
    await asyncio.sleep(0.1)  # let it keep writing so the kill lands mid-insert
    writer.send_signal(signal.SIGKILL)
    assert await writer.wait() == -signal.SIGKILL

    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert [row[0] for row in conn.execute("SELECT id FROM jobs ORDER BY id")] == committed
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone() == (5,)
    conn.close()
    async with Store.open(tmp_path) as store:
        job = await submit(store, user_id=99)
        assert job.id == committed[-1] + 1
        assert [job.status for job in await store.jobs.active_for_chat(0)] == [JobStatus.QUEUED]
