"""The messages of one reply: a deterministic sequence of cuts, the same whether streamed or cut at once.

Pure: imports only core.live.split and core.live.surface.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.live.split import count_units, cut_segment, inline_spans, is_inside
from core.live.surface import LengthUnit, Rendered


class Layout:
    """Splits a growing answer into messages; streaming it or cutting it at once gives the same cuts.

    A message is cut off only when the open segment outgrows `window_units` (raw source units), and the
    cut depends only on that window; so the messages sealed while streaming are the final ones whenever
    the final text extends the streamed one. The one thing a window cannot know is whether text still to
    come closes an emphasis or a link across a cut (in a paragraph longer than a message): `finish` checks
    the cuts against the whole text and cuts afresh if one fell inside such a construct.
    """

    def __init__(
        self,
        *,
        window_units: int,
        unit: LengthUnit,
        render: Callable[[str], Rendered],
        fits: Callable[[Rendered], bool],
    ) -> None:
        self._window = window_units
        self._unit = unit
        self._render = render
        self._fits = fits
        self._reset()

    def _reset(self) -> None:
        self.sealed: list[Rendered] = []
        self.start = 0
        self.carry = ""
        self._decided = ""  # the source every cut so far looked at
        self._cuts: list[int] = []  # where each sealed message ends, as source indices

    def open_segment(self, source: str) -> str:
        return self.carry + source[self.start :]

    def advance(self, source: str, avoid: Sequence[tuple[int, int]] = ()) -> bool:
        """Seal every message the source has outgrown; True if any was sealed."""
        sealed_any = False
        while count_units(segment := self.open_segment(source), self._unit) > self._window:
            shift = len(self.carry) - self.start  # source index + shift = segment index
            cut = cut_segment(
                segment,
                window_units=self._window,
                unit=self._unit,
                carry_length=len(self.carry),
                fits=lambda head: self._fits(self._render(head)),
                avoid=[(a + shift, b + shift) for a, b in avoid if b > self.start],
            )
            self.sealed.append(self._render(cut.head))
            self._decided = source[: cut.examined - shift]
            self.start = cut.resume - shift
            self._cuts.append(self.start)
            self.carry = cut.carry
            sealed_any = True
        return sealed_any

    def finish(self, source: str) -> list[Rendered]:
        """All messages of the complete `source`; cuts afresh where the streamed cuts do not hold."""
        spans = inline_spans(source)
        if not source.startswith(self._decided) or any(is_inside(spans, cut) for cut in self._cuts):
            self._reset()
        self.advance(source, spans)
        pieces = list(self.sealed)
        rest, carry_length = self.open_segment(source), len(self.carry)
        window = self._window
        while rest.strip():
            rendered = self._render(rest)
            if self._fits(rendered):
                pieces.append(rendered)
                break
            # Rendering grew past the limit (rules, heading marks): cut with a smaller window.
            window = min(window, count_units(rest, self._unit)) * 7 // 8
            shift = len(rest) - len(source)
            cut = cut_segment(
                rest,
                window_units=max(window, 1),
                unit=self._unit,
                carry_length=carry_length,
                fits=lambda head: self._fits(self._render(head)),
                avoid=[(a + shift, b + shift) for a, b in spans if b + shift > 0],
            )
            pieces.append(self._render(cut.head))
            rest, carry_length = cut.carry + rest[cut.resume :], len(cut.carry)
        return [piece for piece in pieces if piece.text.strip()]
