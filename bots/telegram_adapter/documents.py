"""Documents of Telegram messages (text files, PDFs, any file that is not an image): which messages carry
one, and their download with getFile after the size check. The core decides what the bytes are.
"""

from __future__ import annotations

from collections.abc import Iterable

from telegram import Message
from telegram.error import TelegramError

from bots.telegram_adapter.inbound import has_image
from core import Document, InputError, check_document_bytes, texts


def has_document(message: Message) -> bool:
    """A file sent as a document; image documents go with the photos."""
    return message.document is not None and not has_image(message)


async def download_documents(messages: Iterable[Message], *, max_bytes: int) -> list[Document]:
    """The documents of `messages` (an album of files is several), refused before any download when the
    sizes Telegram declares are over `max_bytes` together (the core checks the bytes again)."""
    found = [message.document for message in messages if has_document(message)]
    files = [document for document in found if document is not None]
    check_document_bytes(sum(document.file_size or 0 for document in files), max_bytes)
    documents: list[Document] = []
    for file in files:
        try:
            data = bytes(await (await file.get_file()).download_as_bytearray())
        except TelegramError as exc:  # getFile refuses files over 20 MB; a network failure ends the same way
            raise InputError(
                f"document download failed: {type(exc).__name__}", user_message=texts.document_download_failed()
            ) from None
        documents.append(Document(file.file_name or "file", data, file.mime_type or ""))
    return documents
