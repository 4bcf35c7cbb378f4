"""Progress of the long steps: a bar on a terminal, plain lines otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()

    def step(self, label: str, total: int, unit: str = "") -> Step:
        return Step(self, label, total, unit)


class Step:
    WIDTH = 30

    def __init__(self, owner: Progress, label: str, total: int, unit: str) -> None:
        self.owner = owner
        self.label = label
        self.total = max(total, 0)
        self.unit = unit
        self.done = 0
        self.started = time.monotonic()
        self._last_decile = -1
        self._last_draw = 0.0
        self._draw(force=True)

    def advance(self, amount: int = 1) -> None:
        self.done = min(self.done + amount, self.total) if self.total else self.done + amount
        self._draw()

    def finish(self, note: str = "") -> None:
        elapsed = time.monotonic() - self.started
        if not self.owner.enabled:
            return
        line = f"{self.label}: done, {self.done:,}{self._unit()} in {elapsed:.1f} s{('; ' + note) if note else ''}"
        if self.owner.tty:
            self.owner.stream.write("\r\033[K" + line + "\n")
        else:
            self.owner.stream.write(line + "\n")
        self.owner.stream.flush()

    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def _draw(self, force: bool = False) -> None:
        if not self.owner.enabled:
            return
        fraction = self.done / self.total if self.total else 0.0
        if self.owner.tty:
            now = time.monotonic()
            if not force and now - self._last_draw < 0.1 and self.done < self.total:
                return
            self._last_draw = now
            filled = int(fraction * self.WIDTH)
            bar = "█" * filled + "·" * (self.WIDTH - filled)
            self.owner.stream.write(
                f"\r\033[K{self.label:<10} {bar} {fraction:6.1%} {self.done:,}/{self.total:,}{self._unit()}"
            )
            self.owner.stream.flush()
            return
        decile = int(fraction * 10)
        if force or decile > self._last_decile:
            self._last_decile = decile
            self.owner.stream.write(f"{self.label}: {self.done:,}/{self.total:,}{self._unit()} ({fraction:.0%})\n")
            self.owner.stream.flush()
