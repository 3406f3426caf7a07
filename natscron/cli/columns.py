"""Tables that fit the terminal, as `kubectl get` prints them: plain columns separated by
two spaces, each as wide as its widest cell, never wrapped and never cut in the middle of a
word that matters (a status, a time, a cron expression).

On a terminal narrower than the whole table, a table's `reductions` are applied in the order
it lists them until it fits: drop a column that matters less, abbreviate one (a time becomes
an age, as kubectl's AGE), shorten an id in the middle (its distinctive end kept). A free-text
column (`elastic`, the last one: an error) is cut at its end to the room left. Piped (not a
terminal), the whole table is printed, every column, sized to its content, with no trailing
spaces: stable text for scripts.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

SEPARATOR = "  "
ELLIPSIS = "…"


@dataclass(frozen=True)
class Cell:
    text: str
    short: str | None = None
    """What the cell shows once its column is abbreviated; None: the same text."""


@dataclass(frozen=True)
class Column:
    header: str
    short_header: str | None = None
    """The header once the column is abbreviated."""
    elastic: int = 0
    """Free text cut at its end to the room left; it fits while this many characters do."""


class Drop(NamedTuple):
    header: str


class Abbreviate(NamedTuple):
    header: str


class Shorten(NamedTuple):
    header: str
    width: int


Reduction = Drop | Abbreviate | Shorten


def middle_cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle replaced by an ellipsis."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head) :]


def end_cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def _one_line(text: str) -> str:
    return " ".join(text.split()) if any(c in text for c in "\n\r\t") else text


@dataclass
class _Shape:
    """Which columns show, and how, as reductions are applied."""

    shown: list[int]
    abbreviated: set[int] = field(default_factory=set)
    shortened: dict[int, int] = field(default_factory=dict)


class Columns:
    """A table as a rich renderable, laid out at render time for the console it goes to."""

    def __init__(
        self,
        columns: Sequence[Column],
        rows: Iterable[Sequence[Cell | str]],
        reductions: Sequence[Reduction] = (),
    ) -> None:
        self._columns = list(columns)
        self._rows = [
            [cell if isinstance(cell, Cell) else Cell(cell) for cell in row] for row in rows
        ]
        self._reductions = list(reductions)
        self._index = {column.header: i for i, column in enumerate(self._columns)}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width if console.is_terminal else None
        for line in self.lines(width):
            yield Text(line)

    def lines(self, width: int | None = None) -> list[str]:
        """The header and rows; fitted to `width` when given, else whole."""
        shape = _Shape(list(range(len(self._columns))))
        if width is not None:
            for reduction in self._reductions:
                if self._width(shape) <= width:
                    break
                self._reduce(shape, reduction)
        table = self._all_texts(shape)
        widths = [max(len(line[n]) for line in table) for n in range(len(shape.shown))]
        last = len(shape.shown) - 1
        if width is not None and last >= 0 and self._columns[shape.shown[last]].elastic:
            room = width - sum(widths[:last]) - len(SEPARATOR) * last
            widths[last] = max(room, self._columns[shape.shown[last]].elastic)
            table = [[*line[:last], end_cut(line[last], widths[last])] for line in table]
        return [
            SEPARATOR.join(text.ljust(widths[n]) for n, text in enumerate(line)).rstrip()
            for line in table
        ]

    def _reduce(self, shape: _Shape, reduction: Reduction) -> None:
        column = self._index[reduction.header]
        if column not in shape.shown:
            return
        if isinstance(reduction, Drop):
            shape.shown.remove(column)
        elif isinstance(reduction, Abbreviate):
            shape.abbreviated.add(column)
        else:
            shape.shortened[column] = reduction.width

    def _texts(self, shape: _Shape, row: list[Cell] | None) -> list[str]:
        texts = []
        for column in shape.shown:
            spec = self._columns[column]
            abbreviated = column in shape.abbreviated
            if row is None:
                text = (spec.short_header if abbreviated else None) or spec.header
            else:
                cell = row[column]
                text = _one_line((cell.short if abbreviated else None) or cell.text)
                if column in shape.shortened:
                    text = middle_cut(text, shape.shortened[column])
            texts.append(text)
        return texts

    def _width(self, shape: _Shape) -> int:
        """The table's width in this shape; an elastic column counts as its least width."""
        texts = self._all_texts(shape)
        total = len(SEPARATOR) * max(len(shape.shown) - 1, 0)
        for n, column in enumerate(shape.shown):
            widest = max(len(line[n]) for line in texts)
            elastic = self._columns[column].elastic
            total += min(widest, elastic) if elastic else widest
        return total

    def _all_texts(self, shape: _Shape) -> list[list[str]]:
        return [self._texts(shape, row) for row in [None, *self._rows]]
