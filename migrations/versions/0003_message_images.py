"""Image bytes out of `messages`: a `message_images` table holding only recent turns' images, and
`messages.image_count` in place of `messages.parts`.

Existing rows are converted: the images of the last KEPT_TURNS user turns of each active conversation move
to `message_images`; older ones (and all of inactive conversations, never sent upstream again) are
dropped, their turn keeping only the count (a placeholder upstream).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT_TURNS = 2  # HISTORY_IMAGE_TURNS' default; a larger setting sees placeholders for older turns once
BATCH = 100  # messages read at a time: rows with images can be megabytes each

_messages = sa.table(
    "messages",
    sa.column("id", sa.Integer()),
    sa.column("conversation_id", sa.Integer()),
    sa.column("user_id", sa.Integer()),
    sa.column("role", sa.String()),
    sa.column("text", sa.Text()),
    sa.column("parts", sa.JSON(none_as_null=True)),
    sa.column("image_count", sa.Integer()),
)
_conversations = sa.table("conversations", sa.column("id", sa.Integer()), sa.column("active", sa.Boolean()))
_users = sa.table("users", sa.column("id", sa.Integer()), sa.column("platform_user_id", sa.String()))
_images = sa.table(
    "message_images",
    sa.column("id", sa.Integer()),
    sa.column("message_id", sa.Integer()),
    sa.column("conversation_id", sa.Integer()),
    sa.column("author", sa.String()),
    sa.column("mime", sa.String()),
    sa.column("data", sa.LargeBinary()),
)


def upgrade() -> None:
    op.add_column("messages", sa.Column("image_count", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.create_table(
        "message_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("mime", sa.String(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_message_images_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_images_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_images")),
    )
    op.create_index("ix_message_images_conversation_id_message_id", "message_images", ["conversation_id", "message_id"])
    _move_images(op.get_bind())
    # Not a table rebuild on SQLite (3.35+ drops columns in place): a rebuild would DROP `messages`, and with
    # foreign keys on that deletes the message_images rows just written (ON DELETE CASCADE).
    with op.batch_alter_table("messages", recreate="never") as batch:
        batch.drop_column("parts")


def downgrade() -> None:
    op.add_column("messages", sa.Column("parts", sa.JSON(), nullable=True))
    _restore_parts(op.get_bind())
    op.drop_index("ix_message_images_conversation_id_message_id", table_name="message_images")
    op.drop_table("message_images")
    with op.batch_alter_table("messages", recreate="never") as batch:
        batch.drop_column("image_count")


def _move_images(bind: Connection) -> None:
    cutoffs: dict[int, int] = {}  # active conversation -> the oldest message id whose images are kept
    for row in _with_parts(bind):
        images = [part for part in row.parts or () if isinstance(part, dict) and part.get("type") == "image_url"]
        bind.execute(sa.update(_messages).where(_messages.c.id == row.id).values(image_count=len(images)))
        if not images or not row.active:
            continue
        if row.conversation_id not in cutoffs:
            cutoffs[row.conversation_id] = _cutoff(bind, row.conversation_id)
        if row.id < cutoffs[row.conversation_id]:
            continue
        for part in images:
            decoded = _decode(str((part.get("image_url") or {}).get("url", "")))
            if decoded is not None:
                bind.execute(
                    sa.insert(_images).values(
                        message_id=row.id,
                        conversation_id=row.conversation_id,
                        author=row.author or "",
                        mime=decoded[0],
                        data=decoded[1],
                    )
                )


def _with_parts(bind: Connection) -> Iterator[Any]:
    """Messages with parts, BATCH at a time in id order, with their conversation's state and author."""
    last = 0
    while True:
        rows = bind.execute(
            sa.select(
                _messages.c.id,
                _messages.c.conversation_id,
                _messages.c.parts,
                _conversations.c.active,
                _users.c.platform_user_id.label("author"),
            )
            .join(_conversations, _conversations.c.id == _messages.c.conversation_id)
            .outerjoin(_users, _users.c.id == _messages.c.user_id)
            .where(_messages.c.parts.isnot(None), _messages.c.id > last)
            .order_by(_messages.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def _cutoff(bind: Connection, conversation_id: int) -> int:
    found = bind.execute(
        sa.select(_messages.c.id)
        .where(_messages.c.conversation_id == conversation_id, _messages.c.role == "user")
        .order_by(_messages.c.id.desc())
        .offset(KEPT_TURNS - 1)
        .limit(1)
    ).scalar()
    return int(found) if found is not None else 0


def _decode(url: str) -> tuple[str, bytes] | None:
    """(mime, bytes) of a base64 data URL as the bot stored them; None for anything else."""
    header, comma, payload = url.partition(",")
    if not (comma and header.startswith("data:") and header.endswith(";base64")):
        return None
    try:
        return header[len("data:") : -len(";base64")] or "application/octet-stream", base64.b64decode(payload)
    except (binascii.Error, ValueError):
        return None


def _restore_parts(bind: Connection) -> None:
    rows = bind.execute(
        sa.select(_images.c.message_id, _images.c.mime, _images.c.data, _messages.c.text)
        .join(_messages, _messages.c.id == _images.c.message_id)
        .order_by(_images.c.message_id, _images.c.id)
    ).all()
    parts: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row.message_id not in parts:
            parts[row.message_id] = [{"type": "text", "text": row.text}] if row.text else []
        url = f"data:{row.mime};base64,{base64.b64encode(row.data).decode('ascii')}"
        parts[row.message_id].append({"type": "image_url", "image_url": {"url": url}})
    for message_id, value in parts.items():
        bind.execute(sa.update(_messages).where(_messages.c.id == message_id).values(parts=value))
