"""Who may talk to the bot, admin actions, and per-user flood control: `Gatekeeper`, used by `Assistant`.

Access combines ALLOWED_USERS / ALLOWED_CHATS / ADMINS with grants and revocations stored at run time; limits
count in the database, so they hold across processes. Knows no chat platform.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.conversation import ChatAdminCheck, ConversationKey, UserRef
from core.counters import RequestCounter
from core.errors import AccessDeniedError, ChatAdminRequiredError, InputError, QuotaExceededError
from core.settings import Settings
from core.store import Forgotten, Stats, Store, SubjectKind

WINDOW_SECONDS = 60
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("user", "chat")


@dataclass(frozen=True, slots=True)
class Access:
    allowed: bool
    admin: bool


def midnight_utc(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class Gatekeeper:
    """Decides access and enforces limits before anything goes upstream.

    A revocation beats every grant (also an env list entry); a grant adds to the env lists. Admins always
    have access. Requests are counted by `counter` (Redis) if given, else in the database. `clock` returns
    Unix seconds (tests pass their own).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        counter: RequestCounter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._store = store
        self._counter: RequestCounter = counter or store
        self._clock = clock
        self._admins = frozenset(settings.admins)
        self._users = frozenset(settings.allowed_users)
        self._chats = frozenset(settings.allowed_chats)

    def is_admin(self, platform: str, user: UserRef) -> bool:
        return f"{platform}:{user.id}" in self._admins

    async def access(self, conversation: ConversationKey, user: UserRef) -> Access:
        platform = conversation.platform
        if self.is_admin(platform, user):
            return Access(allowed=True, admin=True)
        by_user, by_chat = await self._store.latest_grants(
            platform=platform, user_id=user.id, chat_id=conversation.chat_id
        )
        if by_user is False or by_chat is False:
            return Access(allowed=False, admin=False)
        listed = f"{platform}:{user.id}" in self._users or f"{platform}:{conversation.chat_id}" in self._chats
        open_to_all = not self._users and not self._chats
        return Access(allowed=bool(by_user or by_chat or listed or open_to_all), admin=False)

    async def require(self, conversation: ConversationKey, user: UserRef) -> Access:
        """Raise AccessDeniedError unless `user` may use the bot in `conversation`; every command passes here."""
        access = await self.access(conversation, user)
        if not access.allowed:
            raise AccessDeniedError(f"no access for {conversation.platform} user")
        return access

    async def require_steward(
        self, conversation: ConversationKey, user: UserRef, chat_admin: ChatAdminCheck | None
    ) -> None:
        """Access, and for a conversation a whole group shares, ADMINS or an admin of that chat.

        For commands that change the conversation for everyone in it (`/model name`, `/reset`). The platform
        is asked (`chat_admin`) only after the cheaper checks, so a stranger costs it no request.
        """
        access = await self.require(conversation, user)
        if access.admin or not conversation.is_shared:
            return
        if chat_admin is not None and await chat_admin():
            return
        raise ChatAdminRequiredError(f"{conversation.platform} user is no admin of the shared chat")

    async def admit(self, conversation: ConversationKey, user: UserRef) -> None:
        """Raise AccessDeniedError or QuotaExceededError, or count one request and return."""
        await self.require(conversation, user)
        await self.limit(conversation, user)

    async def limit(self, conversation: ConversationKey, user: UserRef) -> None:
        """Raise QuotaExceededError, or count one request and return (access is the caller's to check)."""
        now = self._clock()
        platform = conversation.platform
        per_day = self._settings.user_tokens_per_day
        if per_day:
            today = midnight_utc(datetime.fromtimestamp(now, UTC))
            used = await self._store.user_usage_since(platform, user.id, today)
            if used.total_tokens >= per_day:
                resume = today + timedelta(days=1)
                raise QuotaExceededError(
                    "daily token limit",
                    retry_after=resume.timestamp() - now,
                    user_message="You have used your daily token limit; it resets at 00:00 UTC.",
                )
        per_minute = self._settings.user_requests_per_minute
        if per_minute:
            window = int(now // WINDOW_SECONDS)
            count = await self._counter.count_request(platform=platform, user_id=user.id, window=window)
            if count > per_minute:
                wait = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
                raise QuotaExceededError(
                    "requests per minute",
                    retry_after=wait,
                    user_message=f"You have sent too many messages; try again in {wait} seconds.",
                )

    async def set_access(self, admin: UserRef, platform: str, kind: str, subject_id: str, *, granted: bool) -> None:
        """`/grant` and `/revoke`: admins only; `kind` is "user" or "chat"."""
        self._require_admin(platform, admin)
        subject_id = subject_id.strip()
        if kind not in SUBJECT_KINDS or not subject_id:
            verb = "grant" if granted else "revoke"
            raise InputError("bad grant", user_message=f"Usage: /{verb} user <id> or /{verb} chat <id>")
        subject: SubjectKind = "user" if kind == "user" else "chat"
        await self._store.add_grant(
            platform=platform, kind=subject, subject_id=subject_id, granted=granted, by=admin.id
        )

    async def stats(self, admin: UserRef, platform: str) -> Stats:
        self._require_admin(platform, admin)
        return await self._store.stats(since=midnight_utc(datetime.fromtimestamp(self._clock(), UTC)))

    async def forget(self, platform: str, user: UserRef) -> Forgotten:
        return await self._store.forget(platform=platform, user_id=user.id)

    def _require_admin(self, platform: str, user: UserRef) -> None:
        if not self.is_admin(platform, user):
            raise AccessDeniedError("not an admin", user_message="That command is for the bot's admins.")
