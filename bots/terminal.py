"""`parley chat`: a conversation in the terminal through the same core (platform "cli").

Interactive on a terminal; with piped stdin it answers one message per line and exits 0 at end of input.
Imports only `core`.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from core import (
    Assistant,
    Completed,
    ConversationKey,
    Image,
    ParleyError,
    ReasoningDelta,
    Settings,
    TextDelta,
    ToolRunning,
    Turn,
    UserRef,
    texts,
)

log = logging.getLogger(__name__)

TOOL_NAMES_SHOWN = 3  # in the "tools running" line; names are model output, so bounded
TOOL_NAME_MAX_CHARS = 64

HELP = """commands:
  /reset            start a new conversation
  /model [NAME]     show the model and the choices, or switch to NAME
  /system [TEXT]    show the system prompt, set it to TEXT, or /system reset
  /imagine PROMPT   draw a picture (saved under IMAGE_DIR)
  /usage            tokens used
  /quit             leave (or Ctrl-D)"""


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry / no USER in a bare container
        return "local"


class TerminalChat:
    """Reads messages, streams answers to `out`, and reports problems on `err` as one line each."""

    def __init__(self, assistant: Assistant, settings: Settings, *, inp: TextIO, out: TextIO, err: TextIO) -> None:
        self._assistant = assistant
        self._settings = settings
        self._inp, self._out, self._err = inp, out, err
        name = _local_user()
        self._key = ConversationKey(platform="cli", chat_id=name)
        self._user = UserRef(id=name, name=name)
        self._interactive = inp.isatty()

    async def run(self) -> int:
        if self._interactive:
            self._print(f"Parley — model {self._settings.chat_model}. /help for commands, Ctrl-D to leave.")
        while True:
            line = await asyncio.to_thread(self._read_line)
            if line is None:
                return 0
            line = line.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                return 0
            try:
                await self._handle(line)
            except ParleyError as exc:
                self._fail(exc.user_message)
            except Exception:
                # The terminal is this adapter's chat: a traceback goes to the log at DEBUG only.
                log.debug("unexpected error", exc_info=True)
                self._fail(texts.GENERIC_FAILURE)

    def _read_line(self) -> str | None:
        if self._interactive:
            try:
                return input("you> ")
            except EOFError:
                return None
        line = self._inp.readline()
        return line or None

    async def _handle(self, line: str) -> None:
        command, _, argument = line.partition(" ")
        match command:
            case "/help":
                self._print(HELP)
            case "/reset":
                await self._assistant.reset(self._key, self._user)
                self._print(texts.reset_done().plain())
            case "/model":
                await self._model(argument.strip())
            case "/system":
                persona = await self._assistant.system_prompt(self._key, self._user, argument)
                self._print(texts.system_prompt(persona).plain())
            case "/imagine":
                result = await self._assistant.imagine(argument, conversation=self._key, user=self._user)
                await self._show_images(result.images)
                if result.text:
                    self._print(result.text)
            case "/usage":
                self._print(texts.usage(await self._assistant.usage(self._key, self._user)).plain())
            case _:
                await self._reply(line)

    async def _model(self, name: str) -> None:
        if name:
            chosen = await self._assistant.set_model(self._key, self._user, name)
            self._print(texts.model_set(chosen).plain())
            return
        current = await self._assistant.current_model(self._key, self._user)
        self._print(texts.model_choices(current, await self._assistant.models()).plain())

    async def _reply(self, text: str) -> None:
        turn = Turn(conversation=self._key, user=self._user, text=text)
        thinking_shown = False
        wrote = False
        note = ""
        pictures: tuple[Image, ...] = ()
        try:
            async for event in self._assistant.reply(turn):
                match event:
                    case TextDelta(text=piece):
                        self._out.write(piece)
                        self._out.flush()
                        wrote = True
                    case ReasoningDelta(text=piece) if self._settings.show_reasoning == "full":
                        self._err.write(piece)
                        self._err.flush()
                    case ReasoningDelta() if self._settings.show_reasoning == "status" and not thinking_shown:
                        thinking_shown = self._interactive
                        if thinking_shown:
                            self._err.write("(thinking…)\n")
                    case ToolRunning(names=names):  # on stderr: stdout keeps only the answers
                        listed = ", ".join(name[:TOOL_NAME_MAX_CHARS] for name in names[:TOOL_NAMES_SHOWN])
                        self._err.write(f"(🔧 {listed}…)\n")
                        self._err.flush()
                    case Completed(images=images):
                        note = event.note  # e.g. the answer hit the length limit
                        pictures = images
        except ParleyError:  # cut short, or a later tool round failed: what was shown keeps its own line
            if wrote:
                self._out.write("\n")
            raise
        self._out.write("\n")
        self._out.flush()
        if pictures:  # after the text's line: a drawing tool's pictures come with streamed text
            await self._show_images(pictures)
        if note:
            self._fail(note)

    async def _show_images(self, images: Sequence[Image]) -> None:
        for path in await asyncio.to_thread(_save_images, Path(self._settings.image_dir), images):
            self._print(f"[image saved: {path}]")

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def _fail(self, message: str) -> None:
        self._out.flush()
        self._err.write(f"parley: {message}\n")
        self._err.flush()


def _save_images(folder: Path, images: Sequence[Image]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    paths = []
    for index, image in enumerate(images, start=1):
        path = folder / f"imagine-{stamp}-{index}.{image.extension}"
        n = 1
        while path.exists():
            n += 1
            path = folder / f"imagine-{stamp}-{index}-{n}.{image.extension}"
        path.write_bytes(image.data)
        paths.append(path.resolve())
    return paths


async def run_terminal(assistant: Assistant, settings: Settings) -> int:
    return await TerminalChat(assistant, settings, inp=sys.stdin, out=sys.stdout, err=sys.stderr).run()
