"""Child processes for the concurrency tests: `python -m tests.storage.workers claim|write DATA_DIR`.

claim: open the store, print "ready", wait for a line on stdin, claim and finish jobs until none
is left, then print the claimed ids as JSON.
write: open one transaction, insert rows without end, print "ready" part way, and wait to be killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from storage import DataDir, Store
from storage.db import Database

READY_AFTER = 2000  # rows written before "ready": enough to spill pages into the WAL
PADDING = "x" * 1000
GIVE_UP_AFTER = 30.0  # seconds; never outlive a test that forgot to kill us


async def claim(data_dir: Path) -> None:
    async with Store.open(data_dir, recover=False) as store:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        claimed = []
        while (job := await store.jobs.claim_next()) is not None:
            claimed.append(job.id)
            await store.jobs.finish(job.id, store.files.result_path(job.id))
            await asyncio.sleep(0.001)  # a moment of "work", so that both claimers overlap
    print(json.dumps(claimed), flush=True)


async def write(data_dir: Path) -> None:
    db = await Database.connect(DataDir(data_dir).db_path, time.time)
    deadline = time.monotonic() + GIVE_UP_AFTER
    async with db.transaction() as tx:
        row = 0
        while time.monotonic() < deadline:
            row += 1
            await tx.execute(
                "INSERT INTO jobs (chat_id, user_id, content_path, style_paths, iterations, work, error,"
                " created_at) VALUES (?, ?, 'c.jpg', '[\"s.jpg\"]', 10, 10.0, ?, 0)",
                (row, 1000 + row, PADDING),
            )
            await tx.execute(
                "INSERT INTO users (user_id, first_seen, last_seen) VALUES (?, 0, 0)", (1000 + row,)
            )
            if row == READY_AFTER:
                print("ready", flush=True)
        raise SystemExit("not killed in time")


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    asyncio.run(claim(folder) if mode == "claim" else write(folder))
