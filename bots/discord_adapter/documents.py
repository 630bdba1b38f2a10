"""Documents of Discord messages: attachments that are neither images nor audio or video (those have their
own paths), downloaded after the size check. The core decides what the bytes are. Imports discord.py and core.
"""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bots.discord_adapter.conversations import is_image
from core import Document, InputError, check_document_bytes, texts

MEDIA_TYPES = ("audio/", "video/")  # voice messages are audio/ogg attachments


def is_document(attachment: discord.Attachment) -> bool:
    content_type = attachment.content_type or ""
    return not is_image(attachment) and not content_type.startswith(MEDIA_TYPES)


async def read_documents(attachments: Sequence[discord.Attachment], *, max_bytes: int) -> list[Document]:
    """The attached documents, refused before any download when the sizes Discord declares are over
    `max_bytes` together (MAX_DOCUMENT_BYTES; the core checks the bytes again)."""
    files = [attachment for attachment in attachments if is_document(attachment)]
    check_document_bytes(sum(attachment.size for attachment in files), max_bytes)
    documents: list[Document] = []
    for attachment in files:
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            raise InputError(
                f"attachment download failed: HTTP {exc.status}", user_message=texts.document_download_failed()
            ) from None
        documents.append(Document(attachment.filename, data, attachment.content_type or ""))
    return documents
