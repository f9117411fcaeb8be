"""Progress reporting on stderr for long reads and analyses."""

from __future__ import annotations

import sys
import time

import click


class StderrProgress:
    """Callable ``progress(fraction, message)`` that reports on stderr.

    On a terminal it redraws one line; otherwise (logs, CI) it prints a line every 10 % but only when
    the task has already run for ``quiet_seconds``, so short tasks print nothing.
    """

    def __init__(self, label: str, enabled: bool = True, quiet_seconds: float = 2.0):
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self.quiet_seconds = quiet_seconds
        self.last_decile = -1
        self.drawn = False

    def __call__(self, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        if self.tty:
            if elapsed >= self.quiet_seconds or self.drawn:
                click.echo(f'\r{self.label}: {100 * fraction:5.1f}% ({message})', nl=False, err=True)
                self.drawn = True
            return
        decile = int(fraction * 10)
        if elapsed >= self.quiet_seconds and decile > self.last_decile:
            self.last_decile = decile
            click.echo(f'{self.label}: {100 * fraction:.0f}% ({message}, {elapsed:.0f} s)', err=True)

    def close(self) -> None:
        if self.drawn:
            click.echo('', err=True)
