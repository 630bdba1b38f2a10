"""Migration 0003 on a database with history, on SQLite and PostgreSQL: image bytes leave `messages.parts`
for `message_images`, only those of the last two user turns of active conversations stay, and a
downgrade puts those back into `parts`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from core.store import upgrade
from tests.store.migration_steps import migrate, run_sync

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64


def _url(n: int) -> str:
    return "data:image/png;base64," + base64.b64encode(PNG + bytes([n])).decode()


def _parts(text_: str, *images: int) -> str:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text_}]
    parts += [{"type": "image_url", "image_url": {"url": _url(n)}} for n in images]
    return json.dumps(parts)


def _fill(connection: Connection) -> None:
    """Ann's active conversation with four photo turns, and an old inactive one with a photo."""
    run = connection.execute
    run(
        text(
            "INSERT INTO users (id, platform, platform_user_id, name, created_at)"
            " VALUES (1, 't', '7', 'Ann', CURRENT_TIMESTAMP)"
        )
    )
    for cid, active in ((1, True), (2, False)):
        run(
            text(
                "INSERT INTO conversations (id, platform, chat_id, thread_id, scope, user_id, model, system_prompt,"
                " active, created_at, updated_at)"
                " VALUES (:id, 't', '7', '', '', 1, 'm', '', :a, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"id": cid, "a": active},
        )
    rows = [
        (1, 2, "user", _parts("old", 9)),
        (2, 1, "user", _parts("one", 1)),
        (3, 1, "assistant", None),
        (4, 1, "user", _parts("two", 2, 3)),
        (5, 1, "user", None),
        (6, 1, "user", _parts("four", 4)),
    ]
    for mid, cid, role, parts in rows:
        run(
            text(
                "INSERT INTO messages (id, conversation_id, user_id, role, text, parts, incomplete, prompt_tokens,"
                " completion_tokens, total_tokens, cached_tokens, reasoning_tokens, platform_message_ids,"
                " created_at) VALUES (:id, :c, 1, :r, :x, :p, false, 0, 0, 0, 0, 0, '[]', CURRENT_TIMESTAMP)"
            ),
            {"id": mid, "c": cid, "r": role, "x": f"m{mid}", "p": parts},
        )


def _after(connection: Connection) -> tuple[list[Any], list[Any], list[str]]:
    images = connection.execute(text("SELECT message_id, author, mime, data FROM message_images ORDER BY id")).all()
    counts = connection.execute(text("SELECT id, image_count FROM messages ORDER BY id")).all()
    columns = [column["name"] for column in inspect(connection).get_columns("messages")]
    return [tuple(row) for row in images], [tuple(row) for row in counts], columns


def _parts_after_downgrade(connection: Connection) -> list[Any]:
    return [tuple(row) for row in connection.execute(text("SELECT id, parts FROM messages ORDER BY id")).all()]


async def test_existing_images_move_to_message_images_within_the_window(empty_database_url: str) -> None:
    url = empty_database_url
    await run_sync(url, migrate, url, "0002")
    await run_sync(url, _fill)

    await upgrade(url)

    images, counts, columns = await run_sync(url, _after)
    # 5 and 6 are the last two user turns of the active conversation: only 6 has an image to keep; turn 4
    # (two images), turn 2 and the inactive conversation's turn 1 keep only their count.
    assert images == [(6, "7", "image/png", PNG + bytes([4]))]
    assert counts == [(1, 1), (2, 1), (3, 0), (4, 2), (5, 0), (6, 1)]
    assert "parts" not in columns and "image_count" in columns

    await run_sync(url, migrate, url, "0002", True)

    restored = dict(await run_sync(url, _parts_after_downgrade))
    parts = restored[6] if isinstance(restored[6], list) else json.loads(restored[6])
    assert parts == json.loads(_parts("m6", 4))
    assert all(restored[mid] is None for mid in (1, 2, 3, 4, 5))
