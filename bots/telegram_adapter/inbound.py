"""What a Telegram message means to the core: who, which conversation, addressed to the bot or not, images.

Reads PTB objects, builds `core` values; sends nothing except getFile downloads of users' photos and
getChatAdministrators when a command needs to know whether its sender administers the group.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telegram import Document, Message, MessageEntity, PhotoSize, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError

from core import ConversationKey, Image, ImageError, UserRef, conversation_for, texts, validate_user_image

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ADMIN_STATUSES = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})  # "creator", "administrator"
_COMMAND = re.compile(r"/(?P<name>[A-Za-z0-9_]{1,32})(?:@(?P<bot>\w+))?(?:\s+(?P<argument>.*))?", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # lower case, without "/" and "@bot"
    argument: str
    bot: str  # the "@bot" part, "" when absent


def parse_command(text: str) -> Command | None:
    """`/name@bot argument` at the start of `text`, or None."""
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    return Command(match["name"].lower(), (match["argument"] or "").strip(), match["bot"] or "")


def is_group(message: Message) -> bool:
    return message.chat.type != ChatType.PRIVATE


def topic_of(message: Message) -> int | None:
    """The forum topic the message is in; None outside forums (reply threads of plain groups included)."""
    return message.message_thread_id if message.is_topic_message else None


def text_of(message: Message) -> str:
    return message.text or message.caption or ""


def user_of(message: Message) -> UserRef:
    """Who sent `message`: the sender chat when there is one, else the user.

    Bot API Message.sender_chat: "Sender of the message when sent on behalf of a chat. For example, the
    supergroup itself for messages sent by its anonymous administrators or a linked channel for messages
    automatically forwarded to the channel's discussion group. [...] the field from contains a fake sender
    user in non-channel chats": the same placeholder for everyone (Channel_Bot 136817688, GroupAnonymousBot
    1087968824), so taking `from` would give all of them one history, one quota, one ban and one /forget.
    """
    if message.sender_chat is not None:
        return UserRef(str(message.sender_chat.id), message.sender_chat.effective_name or "")
    if message.from_user is not None:
        return UserRef(str(message.from_user.id), message.from_user.full_name)
    return UserRef(str(message.chat.id), "")


def conversation_of(message: Message, *, group_history: str) -> ConversationKey:
    """The conversation of `message` (core's rule, `conversation_for`); forum topics are threads."""
    topic = topic_of(message)
    return conversation_for(
        PLATFORM,
        str(message.chat.id),
        thread_id=str(topic) if topic else "",
        user_id=user_of(message).id,
        is_group=is_group(message),
        group_history=group_history,
    )


async def is_chat_admin(message: Message) -> bool:
    """Whether the sender administers the group `message` is in (for /model and /reset in shared groups).

    A message sent as the group itself comes from an anonymous admin ("the supergroup itself for messages
    sent by its anonymous administrators", Bot API Message.sender_chat): only administrators can post that
    way. A channel speaking in a group (its linked channel included) is no admin of it. Everyone else is
    looked up with getChatAdministrators, which works without the bot being an admin (getChatMember is
    "only guaranteed to work for other users if the bot is an administrator").
    """
    sender_chat = message.sender_chat
    if sender_chat is not None:
        return sender_chat.id == message.chat.id
    if message.from_user is None:
        return False
    try:
        admins = await message.get_bot().get_chat_administrators(message.chat.id)
    except TelegramError as exc:  # refuse rather than guess; the log says why
        log.warning("telegram: getChatAdministrators failed in chat %s: %s", message.chat.id, type(exc).__name__)
        return False
    return any(admin.user.id == message.from_user.id and admin.status in ADMIN_STATUSES for admin in admins)


def discussion_of(message: Message) -> tuple[int, int]:
    """The key of the overheard-lines buffer: the chat and its forum topic."""
    return message.chat.id, topic_of(message) or 0


def replies_to_bot(message: Message, me: User) -> bool:
    reply = message.reply_to_message
    if reply is None or reply.from_user is None or reply.from_user.id != me.id:
        return False
    # In a forum topic every message replies to the topic's creation message: that is not a reply to us.
    return not (message.is_topic_message and reply.message_id == message.message_thread_id)


def replied(message: Message) -> Message | None:
    """The message this one replies to; None for a forum topic's creation message (not a real reply)."""
    reply = message.reply_to_message
    if reply is None or (message.is_topic_message and reply.message_id == message.message_thread_id):
        return None
    return reply


def quoted(message: Message, me: User) -> Message | None:
    """The message this one replies to, when it is someone else's (the bot's own are in the history)."""
    reply = replied(message)
    if reply is None or (reply.from_user is not None and reply.from_user.id == me.id):
        return None
    return reply


def mentions_bot(message: Message, me: User) -> bool:
    found = {**message.parse_entities(), **message.parse_caption_entities()}
    for entity, value in found.items():
        if entity.type == MessageEntity.MENTION and me.username and value[1:].lower() == me.username.lower():
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == me.id:
            return True
    return False


def is_addressed(message: Message, me: User) -> bool:
    """Private chats: always. Groups: a mention of the bot, or a reply to one of its messages."""
    return not is_group(message) or mentions_bot(message, me) or replies_to_bot(message, me)


def without_mention(text: str, me: User) -> str:
    """Drop a leading or trailing @bot (the way people address it); one in the middle is part of the text."""
    text = text.strip()
    if not me.username:
        return text
    # By hand, not a regex: `\s*@bot\s*$` rescans every run of whitespace (quadratic in hostile text).
    mention = f"@{me.username}".lower()  # usernames are ASCII, so slices of len(mention) compare exactly
    size = len(mention)
    if text[:size].lower() == mention and not (text[size : size + 1].isalnum() or text[size : size + 1] == "_"):
        rest = size
        while rest < len(text) and (text[rest].isspace() or text[rest] in ",:"):
            rest += 1
        text = text[rest:]
    if text[-size:].lower() == mention:
        text = text[:-size].rstrip()
    return text


def has_image(message: Message) -> bool:
    document = message.document
    return bool(message.photo) or (document is not None and (document.mime_type or "").startswith("image/"))


def _image_media(messages: Iterable[Message]) -> list[PhotoSize | Document]:
    """The largest size of each photo and each image document of `messages`."""
    found: list[PhotoSize | Document] = []
    for message in messages:
        if has_image(message):
            media = message.photo[-1] if message.photo else message.document
            assert media is not None
            found.append(media)
    return found


def declared_image_bytes(messages: Iterable[Message]) -> int:
    """The size Telegram declares for the images of `messages` together, known before downloading."""
    return sum(media.file_size or 0 for media in _image_media(messages))


async def download_images(messages: Iterable[Message], *, max_bytes: int) -> list[Image]:
    """The photos (largest size) and image documents of `messages`, fetched with getFile."""
    images: list[Image] = []
    for media in _image_media(messages):
        if media.file_size is not None and media.file_size > max_bytes:
            raise ImageError("photo too large", user_message=texts.image_too_large(max_bytes))
        try:
            data = bytes(await (await media.get_file()).download_as_bytearray())
        except TelegramError as exc:
            raise ImageError(
                f"download failed: {type(exc).__name__}",
                user_message="The image could not be downloaded from Telegram.",
            ) from None
        images.append(validate_user_image(data, max_bytes=max_bytes))
    return images


def overheard_line(message: Message) -> str:
    """How a message not addressed to the bot is remembered (GROUP_CONTEXT_MESSAGES)."""
    text = text_of(message)
    if has_image(message):
        return f"[photo] {text}".strip()
    return text


def caption_of(messages: Sequence[Message]) -> str:
    """An album's text: its captions in order (usually only the first item has one)."""
    return "\n".join(text for text in (text_of(m).strip() for m in messages) if text)
