"""Benchmark of the history hot path: `recent_messages(limit=50)` + `add_message`, per turn.

Fills 100,000 messages across 1,000 conversations, then times random turns on SQLite (a temporary file) and
PostgreSQL (a temporary database, created and dropped here). Target: p50 < 5 ms on both.
Run from the repository root: .venv/bin/python -m bench.history [--turns 500] [--pg-url URL] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import insert, text

from core.conversation import UserRef
from core.store import NewMessage, open_store, upgrade
from core.store.db import create_engine
from core.store.tables import Conversation, Message, User, utc_now
from tests.postgres import connect_admin, temporary_database

CONVERSATIONS = 1_000
MESSAGES = 100_000
USERS = 100
HISTORY_LIMIT = 50
WARM_UP_TURNS = 50
INSERT_BATCH_ROWS = 10_000


async def fill(database_url: str) -> None:
    """Bulk-insert users, conversations and messages (executemany in batches, one transaction)."""
    now = utc_now()
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(User),
                [{"platform": "bench", "platform_user_id": str(n), "name": f"user {n}"} for n in range(USERS)],
            )
            await connection.execute(
                insert(Conversation),
                [
                    {
                        "platform": "bench",
                        "chat_id": str(n),
                        "user_id": n % USERS + 1,
                        "model": "m",
                        "system_prompt": "",
                        "active": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(CONVERSATIONS)
                ],
            )
            rows = [
                {
                    "conversation_id": n % CONVERSATIONS + 1,
                    "user_id": n % USERS + 1,
                    "role": "user" if n % 2 == 0 else "assistant",
                    "text": f"message {n}: " + "lorem ipsum dolor sit amet " * 8,
                    "platform_message_ids": [str(n)],
                    "created_at": now,
                }
                for n in range(MESSAGES)
            ]
            for start in range(0, len(rows), INSERT_BATCH_ROWS):
                await connection.execute(insert(Message), rows[start : start + INSERT_BATCH_ROWS])
        async with engine.connect() as connection:  # fresh planner statistics, as autovacuum would give
            await connection.execute(text("ANALYZE"))
            await connection.commit()
    finally:
        await engine.dispose()


async def time_turns(database_url: str, turns: int) -> list[float]:
    """Milliseconds per turn: load the context, then store the next message."""
    rng = random.Random(7)
    durations: list[float] = []
    async with open_store(database_url) as store:
        for n in range(WARM_UP_TURNS + turns):
            conversation_id = rng.randint(1, CONVERSATIONS)
            user = UserRef(str(rng.randrange(USERS)), "")
            started = time.perf_counter()
            history = await store.recent_messages(conversation_id, limit=HISTORY_LIMIT)
            await store.add_message(conversation_id, NewMessage("user", f"turn {n}", user=user))
            elapsed_ms = (time.perf_counter() - started) * 1000
            assert len(history) == HISTORY_LIMIT
            if n >= WARM_UP_TURNS:
                durations.append(elapsed_ms)
    return durations


def report(name: str, durations: list[float], fill_seconds: float) -> None:
    cuts = statistics.quantiles(durations, n=100)
    print(
        f"{name:<11} fill {fill_seconds:5.1f} s | {len(durations)} turns: "
        f"p50 {cuts[49]:.2f} ms  p95 {cuts[94]:.2f} ms  p99 {cuts[98]:.2f} ms"
    )


async def bench(name: str, database_url: str, turns: int) -> None:
    await upgrade(database_url)
    started = time.perf_counter()
    await fill(database_url)
    report(name, await time_turns(database_url, turns), time.perf_counter() - started)


@asynccontextmanager
async def temporary_postgres_database(admin_url: str) -> AsyncIterator[str]:
    async with temporary_database(await connect_admin(admin_url), admin_url, prefix="parley_bench_") as url:
        yield url


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        await bench("SQLite", f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}", args.turns)
    if not args.skip_postgres:
        async with temporary_postgres_database(args.pg_url) as url:
            await bench("PostgreSQL", url, args.turns)


if __name__ == "__main__":
    asyncio.run(main())
