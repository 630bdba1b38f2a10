"""LiveReply: one streamed answer growing on screen, as fast as the platform allows and never faster.

Pacing. A reader task only appends deltas (O(1) each) and wakes the writer. The writer compares the
picture the reply should show (sealed messages in final form, the open one as a live preview, or a
"thinking" state) with what the chat shows, and turns the most important difference into one platform
call after a ticket from the bot's shared `Budget`: the chat must be due (one call per
`profile.edit_interval_seconds` per chat) and the bot must have a request to spend. It renders only once
the ticket is granted, so every delta that arrived while waiting is coalesced into that one call, and an
unchanged message is never sent again. Priorities: a reply's first visible text, then final texts, then
intermediate edits; a 429 holds the chat for `retry_after` and the text keeps coalescing. When the stream
ends the waiting ticket is raised to FINAL, the final layout is computed from the authoritative text
(`Completed.text`), and the writer reconciles until the last edit carries the complete text. A message
that outgrows the platform limit is sealed (its final text sent) and the answer continues in a new one
(core.live.layout). With native drafts (`profile.supports_draft`) the open message is drafted instead of
edited, and only final texts are sent as messages. Everything platform-specific comes from the `Profile`.

Imports only the stdlib, core.events, core.errors and core.live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from core.errors import FormattingRejectedError, ParleyError, StreamInterruptedError, SurfaceRateLimitError
from core.events import Completed, Image, ReasoningDelta, TextDelta, ToolRunning
from core.live.budget import Budget, Clock, Priority, Ticket
from core.live.layout import Layout
from core.live.markdown import (
    ImageFilter,
    clean_surrogates,
    render_final,
    render_label,
    render_live,
    render_plain,
    render_reasoning,
    strip_images,
    with_note,
)
from core.live.split import count_units, cut_segment
from core.live.surface import Handle, Labels, Profile, Rendered, ReplyResult, Surface

log = logging.getLogger(__name__)

ReasoningMode = Literal["off", "status", "full"]
T = TypeVar("T")
# Answers longer than this (characters) get their final layout in a worker thread: ~200 ms per MB for ordinary
# text and up to ~1 s per MB for hostile Markdown (bench/hostile_output.py --layout), too long to hold the loop.
FINAL_LAYOUT_THREAD_CHARS = 65_536

STATUS_TOOL_NAMES = 3  # tool names a status line shows at most (the rest is "…")
STATUS_NAME_MAX_CHARS = 64  # OpenAI's limit for a function name; model output may name anything


@dataclass(slots=True)
class _Shown:
    handle: Handle
    rendered: Rendered


@dataclass(frozen=True, slots=True)
class _Op:
    kind: Literal["send", "edit", "draft"]
    index: int
    rendered: Rendered
    priority: Priority


@dataclass(frozen=True, slots=True)
class _Final:
    """The end state: messages in place, then images (with a caption), then more messages."""

    messages: list[Rendered]
    images: tuple[Image, ...] = ()
    caption: Rendered | None = None
    after: tuple[Rendered, ...] = ()


class LiveReply:
    """Shows one reply on a `Surface` while its events stream in. Use once: `await LiveReply(...).run(events)`."""

    def __init__(
        self,
        surface: Surface,
        *,
        budget: Budget,
        show_reasoning: ReasoningMode = "status",
        clock: Clock | None = None,
        labels: Labels | None = None,
        on_first_text: Callable[[], None] | None = None,
    ) -> None:
        self._surface = surface
        self._on_first_text = on_first_text  # called once, when the answer's first text is on screen
        self._profile: Profile = surface.profile
        self._dialect = self._profile.markup
        self._to_entities = self._profile.to_entities
        self._budget = budget
        self._clock = clock or budget.clock
        self._reasoning_mode = show_reasoning
        self._labels = labels or Labels()
        self._max_units = self._profile.max_message_units
        self._unit = self._profile.length_unit
        self._layout = self._new_layout()
        # Written by the reader.
        self._chunks: list[str] = []
        self._reasoning: list[str] = []
        self._completed: Completed | None = None
        self._tools_running: tuple[str, ...] = ()  # shown as a status line until the answer goes on
        self._error: ParleyError | None = None
        self._crash: BaseException | None = None
        self._ended = False
        self._changed = asyncio.Event()
        self._ticket: Ticket | None = None
        # Owned by the writer.
        self._pulled = 0
        self._source = ""
        self._filter = ImageFilter()
        self._final: _Final | None = None
        self._final_text = ""
        self._shown: list[_Shown] = []
        self._extra: list[Handle] = []
        self._plain: set[int] = set()
        self._draft: Rendered | None = None
        self._draft_at = 0.0
        self._has_answer = False
        self._answer_shown = False
        self._reasoning_pulled = 0
        self._reasoning_text = ""
        self._reasoning_before_answer = False
        self._reasoning_cache: tuple[tuple[int, bool], Rendered] = ((-1, False), Rendered(""))
        self.rate_limited = 0  # 429s met, for tests and logs

    # --- public ----------------------------------------------------------------------------------

    async def run(self, events: AsyncIterable[object]) -> ReplyResult:
        """Stream `events` onto the surface; return what stayed on screen once the final text is shown.

        A `ParleyError` from `events` (or an end without `Completed`) keeps the text shown and adds a
        short note from the error's `user_message`; an answer cut by the upstream (`finish_reason` length,
        content_filter) gets `Completed.note`. A ParleyError that is not `noted_in_reply` (AccessDeniedError)
        and other exceptions propagate after the helpers stop.
        """
        reader = asyncio.create_task(self._read(events))
        keeper = asyncio.create_task(self._keep_alive())
        try:
            await self._write()
        finally:
            for task in (reader, keeper):
                task.cancel()
            await asyncio.gather(reader, keeper, return_exceptions=True)
        handles = tuple(shown.handle for shown in self._shown) + tuple(self._extra)
        return ReplyResult(
            handles=handles,
            text=self._final_text,
            is_complete=self._completed is not None and self._error is None,
            error_message=self._error.user_message if self._error else "",
            images_sent=len(self._final.images) if self._final else 0,
        )

    # --- the reader: O(1) per delta ---------------------------------------------------------------

    async def _read(self, events: AsyncIterable[object]) -> None:
        chunks, reasoning, changed = self._chunks, self._reasoning, self._changed
        try:
            async for event in events:
                if type(event) is TextDelta:
                    chunks.append(event.text)
                    self._tools_running = ()
                    changed.set()
                elif type(event) is ToolRunning:
                    self._tools_running = event.names
                    changed.set()
                elif type(event) is ReasoningDelta:
                    reasoning.append(event.text)
                    if self._reasoning_mode != "off":
                        changed.set()
                elif type(event) is Completed:
                    self._completed = event
            if self._completed is None:
                self._error = StreamInterruptedError("stream ended without Completed")
        except ParleyError as exc:
            if not exc.noted_in_reply:  # a refusal: nothing is shown, the caller answers or stays silent
                self._crash = exc
                raise
            self._error = exc
        except BaseException as exc:
            self._crash = exc
            raise
        finally:
            self._ended = True
            if self._ticket is not None:
                self._ticket.raise_to(Priority.FINAL)
            changed.set()
            # Close the source at once (an assistant reply holds its conversation's lock until closed).
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    # --- typing and draft keep-alive ---------------------------------------------------------------

    async def _keep_alive(self) -> None:
        interval = self._profile.typing_interval_seconds
        while True:
            if not self._answer_shown and self._draft is None and self._budget.try_take():
                try:
                    await self._surface.typing()
                except Exception:  # typing is cosmetic: no failure of it may break the reply
                    log.debug("typing indicator failed", exc_info=True)
            await self._clock.sleep(interval)
            if self._draft is not None and self._due_draft_refresh():
                self._changed.set()

    def _due_draft_refresh(self) -> bool:
        return self._clock.now() - self._draft_at >= self._profile.draft_refresh_seconds

    # --- the writer --------------------------------------------------------------------------------

    async def _write(self) -> None:
        lane, interval = self._surface.chat_key, self._profile.edit_interval_seconds
        while True:
            self._changed.clear()
            if self._crash is not None:
                raise self._crash
            if self._ended and self._final is None and self._is_large():
                # Laying out a huge answer is linear but takes a while: in a worker thread, the loop (every
                # other chat, a platform heartbeat) keeps running. Only this task touches the layout.
                self._pull()
                self._final = await asyncio.to_thread(self._compute_final)
            op = self._next_op()
            if op is None:
                if self._final is not None:
                    break
                await self._changed.wait()
                continue
            ticket = self._budget.ticket(lane, op.priority, interval_seconds=interval)
            if self._ended:
                ticket.raise_to(Priority.FINAL)
            self._ticket = ticket
            try:
                await ticket.wait()
            finally:
                self._ticket = None
            op = self._next_op()  # the latest text, coalescing everything that came while waiting
            if op is not None:
                await self._perform(op)
        await self._finish_extras()

    def _is_large(self) -> bool:
        completed = self._completed
        return len(self._source) + (len(completed.text) if completed else 0) > FINAL_LAYOUT_THREAD_CHARS

    def _next_op(self) -> _Op | None:
        messages, open_index = self._frame()
        best: _Op | None = None
        for index, wanted in enumerate(messages):
            is_final = open_index is None or index < open_index
            if index in self._plain:
                wanted = render_plain(wanted, self._dialect)
            if not is_final and self._profile.supports_draft:
                if wanted != self._draft or self._due_draft_refresh():
                    op = _Op("draft", index, wanted, self._priority(index, is_final=False))
                else:
                    continue
            elif index >= len(self._shown):
                op = _Op("send", index, wanted, self._priority(index, is_final=is_final))
            elif self._shown[index].rendered != wanted:
                op = _Op("edit", index, wanted, self._priority(index, is_final=is_final))
            else:
                continue
            if best is None or op.priority < best.priority:
                best = op
            if op.kind in ("send", "draft"):
                break  # later messages come after this one
        return best

    def _priority(self, index: int, *, is_final: bool) -> Priority:
        if not self._shown and self._draft is None:
            return Priority.FIRST
        if self._answer_part(index) and self._has_answer and not self._answer_shown:
            return Priority.FIRST  # the answer's first text, after a "thinking" state
        return Priority.FINAL if is_final else Priority.EDIT

    async def _perform(self, op: _Op) -> None:
        try:
            if op.kind == "draft":
                await self._surface.draft(op.rendered)
                self._draft, self._draft_at = op.rendered, self._clock.now()
            elif op.kind == "send":
                handle = await self._surface.send(op.rendered)
                self._shown.append(_Shown(handle, op.rendered))
                self._draft = None  # a sent message replaces the draft
            else:
                await self._surface.edit(self._shown[op.index].handle, op.rendered)
                self._shown[op.index].rendered = op.rendered
        except SurfaceRateLimitError as exc:
            # Wait it out for everyone in this chat; the text keeps coalescing, nothing is dropped.
            self.rate_limited += 1
            self._budget.hold(self._surface.chat_key, exc.retry_after)
            return
        except FormattingRejectedError:
            if op.rendered == render_plain(op.rendered, self._dialect):
                raise
            log.info("formatting refused by the platform; message %d falls back to plain text", op.index)
            self._plain.add(op.index)
            return
        if self._answer_part(op.index) and self._has_answer and not self._answer_shown:
            self._answer_shown = True
            if self._on_first_text is not None:
                self._on_first_text()

    def _answer_part(self, index: int) -> bool:
        return not (self._reasoning_mode == "full" and self._reasoning_before_answer and index == 0)

    # --- what the reply should show ----------------------------------------------------------------

    def _pull(self) -> None:
        """Take in what the reader appended since the last call (O(new text))."""
        if self._pulled < len(self._chunks):
            fresh = clean_surrogates(self._filter.feed("".join(self._chunks[self._pulled :])))
            self._pulled = len(self._chunks)
            self._source += fresh
            self._has_answer = self._has_answer or bool(fresh.strip())
        if self._reasoning_pulled < len(self._reasoning) and self._reasoning_mode != "off":
            self._reasoning_text += "".join(self._reasoning[self._reasoning_pulled :])
            self._reasoning_pulled = len(self._reasoning)
            if not self._has_answer and not self._shown and self._reasoning_text.strip():
                self._reasoning_before_answer = True

    def _frame(self) -> tuple[list[Rendered], int | None]:
        """The messages to show and the index of the one still growing (None once final)."""
        self._pull()
        if self._ended and self._final is None:
            self._final = self._compute_final()
        if self._final is not None:
            return self._final.messages, None
        messages: list[Rendered] = []
        if self._reasoning_mode == "full" and self._reasoning_before_answer:
            messages.append(self._reasoning_message(self._reasoning_text, is_collapsed=self._has_answer))
        if self._has_answer:
            self._layout.advance(self._source)
            messages.extend(self._layout.sealed)
            live = self._with_status(render_live(self._layout.open_segment(self._source), self._dialect))
            if live.text:
                messages.append(live)
            return messages, len(messages) - 1 if live.text else None
        if self._tools_running:
            messages.append(render_label(self._tool_status(), self._dialect))
        elif self._reasoning_mode == "status" and self._reasoning_before_answer:
            messages.append(render_label(self._labels.thinking, self._dialect))
        return messages, (len(messages) - 1 if messages else None)

    def _tool_status(self) -> str:
        names = list(dict.fromkeys(name[:STATUS_NAME_MAX_CHARS] for name in self._tools_running))
        shown = ", ".join(names[:STATUS_TOOL_NAMES]) + (", …" if len(names) > STATUS_TOOL_NAMES else "")
        return self._labels.tool_running.format(names=shown)

    def _with_status(self, live: Rendered) -> Rendered:
        """The growing message with the running tools' status line under it, when that fits."""
        if not self._tools_running:
            return live
        label = render_label(self._tool_status(), self._dialect)
        if not live.text:
            return label
        combined = Rendered(f"{live.text}\n\n{label.text}", live.markup, live.entities)
        return combined if self._fits(combined) else live

    def _reasoning_message(self, reasoning: str, *, is_collapsed: bool) -> Rendered:
        key = (len(reasoning), is_collapsed)
        if self._reasoning_cache[0] != key:  # rendered once per change, not once per look
            rendered = render_reasoning(
                reasoning,
                self._dialect,
                is_collapsed=is_collapsed,
                max_units=self._max_units,
                unit=self._unit,
                ellipsis=self._labels.truncated_reasoning,
            )
            self._reasoning_cache = (key, rendered)
        return self._reasoning_cache[1]

    def _compute_final(self) -> _Final:
        completed, error = self._completed, self._error
        prefix: list[Rendered] = []
        if self._reasoning_mode == "full" and self._reasoning_before_answer:
            reasoning = (completed.reasoning if completed else "") or "".join(self._reasoning)
            reasoning = clean_surrogates(reasoning)
            prefix.append(self._reasoning_message(reasoning, is_collapsed=True))
        if completed is not None and error is None:
            text = strip_images(completed.text)
        else:
            text = self._source + self._filter.flush()
            if not text.strip() and isinstance(error, StreamInterruptedError):
                text = strip_images(error.partial_text)
        self._final_text = text
        pieces = self._layout.finish(text)
        images = completed.images if completed is not None and error is None else ()
        note = self._labels.note_prefix + error.user_message if error else ""
        if completed is not None and error is None and completed.note:  # e.g. cut at the length limit
            note = self._labels.note_prefix + completed.note
        if not pieces and not images and not note:
            note = self._labels.empty_answer
        if note:
            noted = self._with_note(pieces[-1], note) if pieces else None
            if noted is not None:
                pieces[-1] = noted
            else:  # the note alone, in a message of its own
                pieces.append(self._with_note(None, note) or render_label(note, self._dialect))
        if not images:
            return _Final(prefix + pieces)
        return self._with_images(prefix, pieces, text, images)

    def _with_images(
        self, prefix: list[Rendered], pieces: list[Rendered], text: str, images: tuple[Image, ...]
    ) -> _Final:
        """Images follow text already shown (it stays: read, and in a group the reply to the question);
        else they go with the text as caption when it fits, or with the caption's worth of text and the
        rest as messages after them."""
        caption_limit = self._profile.caption_max_units
        answer_shown = self._answer_shown
        if not pieces:
            return _Final(prefix, images)
        if answer_shown:  # the text read stays where it is (in a group, the reply to the question)
            return _Final(prefix + pieces, images)
        if len(pieces) == 1 and count_units(pieces[0].text, self._unit) <= caption_limit:
            return _Final(prefix, images, pieces[0])
        cut = cut_segment(
            text,
            window_units=caption_limit,
            unit=self._unit,
            fits=lambda head: self._units(render_final(head, self._dialect, self._to_entities)) <= caption_limit,
        )
        caption = render_final(cut.head, self._dialect, self._to_entities)
        rest = self._new_layout().finish(cut.carry + text[cut.resume :])
        return _Final(prefix, images, caption, tuple(rest))

    def _new_layout(self) -> Layout:
        # Room is kept in each message for what a live preview adds to the source (a closed code fence).
        return Layout(
            window_units=self._max_units - self._profile.live_reserve_units,
            unit=self._unit,
            render=lambda source: render_final(source, self._dialect, self._to_entities),
            fits=self._fits,
        )

    def _with_note(self, rendered: Rendered | None, note: str) -> Rendered | None:
        return with_note(rendered, note, self._dialect, max_units=self._max_units, unit=self._unit)

    def _fits(self, rendered: Rendered) -> bool:
        return self._units(rendered) <= self._max_units

    def _units(self, rendered: Rendered) -> int:
        return count_units(rendered.text, self._unit)

    # --- after the messages: images, more messages, deletions --------------------------------------

    async def _finish_extras(self) -> None:
        final = self._final
        assert final is not None
        surface = self._surface
        if final.images:
            images = final.images
            self._extra.extend(await self._call(lambda caption: surface.send_images(images, caption), final.caption))
        for rendered in final.after:
            self._extra.append(await self._call(_send_with(surface), rendered))
        for shown in self._shown[len(final.messages) :]:
            await self._call(_delete_with(surface, shown.handle), None)
        del self._shown[len(final.messages) :]

    async def _call(self, action: Callable[[Rendered | None], Awaitable[T]], rendered: Rendered | None) -> T:
        """One final call: waits for a ticket, waits out 429s, falls back to plain text if refused."""
        lane, interval = self._surface.chat_key, self._profile.edit_interval_seconds
        while True:
            await self._budget.ticket(lane, Priority.FINAL, interval_seconds=interval).wait()
            try:
                return await action(rendered)
            except SurfaceRateLimitError as exc:
                self.rate_limited += 1
                self._budget.hold(lane, exc.retry_after)
            except FormattingRejectedError:
                plain = render_plain(rendered, self._dialect) if rendered is not None else None
                if plain is None or plain == rendered:
                    raise
                rendered = plain


def _send_with(surface: Surface) -> Callable[[Rendered | None], Awaitable[Handle]]:
    async def send(rendered: Rendered | None) -> Handle:
        assert rendered is not None
        return await surface.send(rendered)

    return send


def _delete_with(surface: Surface, handle: Handle) -> Callable[[Rendered | None], Awaitable[None]]:
    async def delete(_: Rendered | None) -> None:
        await surface.delete(handle)

    return delete
