"""Drawing: `/imagine`, and the `generate_image` capability a reply's tools get. Both ask IMAGE_MODEL (the
picture comes back inside a chat completion), charge its usage to the user who asked and count as one of
their requests; split from core.assistant so that file keeps to conversations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from core.access import Gatekeeper
from core.conversation import ConversationKey, UserRef, user_hash
from core.errors import ImageError, InputError, ParleyError
from core.events import Completed, Image, Usage
from core.images import Download, extract_images, to_data_url
from core.inputs import is_blank, too_long
from core.settings import Settings
from core.store import Store
from core.tools import Draw, image_drawer
from core.upstream import UpstreamClient


class Painter:
    """IMAGE_MODEL for one assistant: `imagine` for the command, `drawer` for the tool of one reply."""

    def __init__(
        self,
        *,
        settings: Settings,
        upstream: UpstreamClient,
        store: Store,
        gate: Gatekeeper,
        downloader: Callable[[], Download],
    ) -> None:
        """`downloader` makes the download function of one answer (its images share one byte budget)."""
        self._settings = settings
        self._upstream = upstream
        self._store = store
        self._gate = gate
        self._downloader = downloader

    async def imagine(
        self,
        prompt: str,
        *,
        conversation: ConversationKey,
        user: UserRef,
        references: Sequence[Image] = (),
    ) -> Completed:
        """`Assistant.imagine`: access, prompt and limits checked; the usage recorded; ImageError without an image."""
        await self._gate.require(conversation, user)  # first: a stranger learns nothing, not even usage hints
        model = self._settings.image_model
        if not model:
            raise ParleyError("IMAGE_MODEL not set", user_message="Image generation is not set up on this bot.")
        prompt = prompt.strip()
        if is_blank(prompt):
            raise InputError("empty prompt", user_message="Say what to draw, e.g. /imagine a lighthouse at dusk.")
        if len(prompt) > self._settings.max_input_chars:
            raise too_long(self._settings.max_input_chars)
        await self._gate.limit(conversation, user)
        content: str | list[dict[str, Any]] = prompt
        if references:
            content = [{"type": "text", "text": prompt}]
            content += [{"type": "image_url", "image_url": {"url": to_data_url(image)}} for image in references]
        # Before the upstream call: a /forget during the call then leaves the usage below unrecorded.
        record = await self._store.active_conversation(
            conversation, user, model=self._settings.chat_model, system_prompt=self._settings.system_prompt
        )
        completion = await self._upstream.complete(
            model=model,
            messages=[{"role": "user", "content": content}],
            user=user_hash(conversation.platform, user.id),
        )
        if completion.usage is not None:
            await self._store.record_usage(
                user,
                conversation.platform,
                conversation_id=record.id,
                kind="image",
                model=model,
                usage=completion.usage,
                create_user=False,
            )
        extracted = await extract_images(
            completion.text,
            completion.image_urls,
            max_bytes=self._settings.image_max_bytes,
            download=self._downloader(),
            deadline_seconds=self._settings.image_download_timeout_seconds,
        )
        if not extracted.images:
            if extracted.failures:
                raise extracted.failures[0]
            raise ImageError("no image in the answer", user_message="The model did not return an image.")
        return Completed(text=extracted.caption, images=extracted.images)

    def drawer(self, key: ConversationKey, user: UserRef, conversation_id: int) -> Draw | None:
        """The `generate_image` capability of one reply: IMAGE_MODEL, its usage charged to `user`."""
        model = self._settings.image_model
        if not model:
            return None

        async def record(usage: Usage) -> None:
            await self._store.record_usage(
                user,
                key.platform,
                conversation_id=conversation_id,
                kind="image",
                model=model,
                usage=usage,
                create_user=False,
            )

        return image_drawer(
            upstream=self._upstream,
            model=model,
            upstream_user=user_hash(key.platform, user.id),
            max_prompt_chars=self._settings.max_input_chars,
            image_max_bytes=self._settings.image_max_bytes,
            download=self._downloader(),
            deadline_seconds=self._settings.image_download_timeout_seconds,
            admit=lambda: self._gate.limit(key, user),  # a drawing counts as /imagine does
            on_usage=record,
        )
