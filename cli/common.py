"""What the CLI's commands share: the console (stderr, so stdout stays data) and progress bars."""

from __future__ import annotations

from datetime import date

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gis.platform.errors import InvalidInput

console = Console(stderr=True)


def parse_day(value: str, option: str) -> date:
    """A date given on the command line, or a clear error naming the option."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD)", where=option) from None


def progress_bar() -> Progress:
    """The CLI's progress bar: description, bar, done of total, time elapsed."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
