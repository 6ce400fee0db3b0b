"""A DataTable that follows fresh data without losing the operator's place.

`DataTable.clear()` drops the cursor and the scroll position, so a table that is
redrawn every second would be unusable. Instead rows are matched by key: gone
rows are removed, new rows added, and only cells whose value changed are
updated. Callers wrap `sync` in `app.batch_update()` so one refresh paints once.

On top of the data the operator chooses how to look at it, and every new sync
keeps that choice: a sort column and direction (shown ▲/▼ in its header), full
width for the columns that are cut short, and a compact set of columns for small
terminals. An empty table says why it is empty instead of showing nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey

ColumnSpec = tuple[str, str, int | None]  # key, label, width (None: as wide as the content)
UP, DOWN = "▲", "▼"


def sort_value(cell: object) -> tuple[int, float, str]:
    """What a cell sorts by: numbers as numbers ("1,234" after "99"), the rest as text."""
    plain = cell.plain if isinstance(cell, Text) else str(cell)
    try:
        return (0, float(plain.replace(",", "").strip()), "")
    except ValueError:
        return (1, 0.0, plain.casefold())


class LiveTable(DataTable):
    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    """

    def __init__(
        self,
        columns: Sequence[ColumnSpec],
        *,
        empty: str = "Nothing to show.",
        compact_drop: Collection[str] = (),
        **kwargs: object,
    ) -> None:
        """columns: (key, label, width or None for automatic); compact_drop: keys left out when compact."""
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        kwargs.setdefault("cell_padding", 1)
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._column_spec = tuple(columns)
        self._compact_drop = frozenset(compact_drop)
        self._empty = empty
        self._rows: dict[Hashable, Sequence[object]] = {}
        self._order: list[Hashable] = []
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.compact = False
        self.wide = False

    def on_mount(self) -> None:
        self._add_columns()
        self._show()  # rows given before the columns existed

    # -- what the caller gives -------------------------------------------------------

    def sync(self, rows: Mapping[Hashable, Sequence[object]], order: Sequence[Hashable]) -> None:
        """Show `rows` (key -> cells in column order) in `order`, touching only what changed.

        `order` is the natural order; the operator's sort, if any, is applied on top.
        """
        self._rows, self._order = dict(rows), list(order)
        if self.columns:  # not mounted yet: on_mount shows them
            self._show()

    @property
    def empty(self) -> str:
        """What the table says while it has no rows (why it is empty)."""
        return self._empty

    @empty.setter
    def empty(self, text: str) -> None:
        if text != self._empty:
            self._empty = text
            self.refresh()

    @property
    def selected_key(self) -> Hashable | None:
        """The key of the row under the cursor, or None on an empty table."""
        if not self.row_count:
            return None
        try:
            key: RowKey = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return key.value

    # -- what the operator chooses ----------------------------------------------------

    def cycle_sort(self) -> None:
        """Sort by the next column (ascending); after the last one, back to the natural order."""
        keys = [key for key, _, _ in self._visible_spec()]
        if self.sort_column not in keys:
            self.sort_column = keys[0] if keys else None
        else:
            at = keys.index(self.sort_column) + 1
            self.sort_column = keys[at] if at < len(keys) else None
        self.sort_reverse = False
        self._rebuild()

    def reverse_sort(self) -> None:
        """Flip the direction (sorting by the first column if no column was chosen)."""
        if self.sort_column is None:
            spec = self._visible_spec()
            self.sort_column = spec[0][0] if spec else None
        self.sort_reverse = not self.sort_reverse
        self._rebuild()

    def sort_by(self, column: str) -> None:
        """A header clicked: sort by it, or flip the direction if it already sorts."""
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._rebuild()

    def set_wide(self, wide: bool) -> None:
        """Let the columns that are cut to a width (names) grow to their full content."""
        if wide != self.wide:
            self.wide = wide
            self._rebuild()

    def set_compact(self, compact: bool) -> None:
        """Leave out the columns in `compact_drop` (a small terminal keeps the counts that matter)."""
        if compact != self.compact:
            self.compact = compact
            self._rebuild()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value is not None:
            self.sort_by(event.column_key.value)

    # -- drawing ------------------------------------------------------------------------

    def _visible_spec(self) -> list[ColumnSpec]:
        return [c for c in self._column_spec if not (self.compact and c[0] in self._compact_drop)]

    def _visible_cells(self, cells: Sequence[object]) -> list[object]:
        return [cell for spec, cell in zip(self._column_spec, cells)
                if not (self.compact and spec[0] in self._compact_drop)]

    def _label(self, key: str, label: str) -> str:
        if key != self.sort_column:
            return label
        return f"{label} {DOWN if self.sort_reverse else UP}"

    def _add_columns(self) -> None:
        for key, label, width in self._visible_spec():
            self.add_column(self._label(key, label), key=key, width=None if self.wide else width)

    def _sorted_order(self) -> list[Hashable]:
        keys = [c[0] for c in self._column_spec]
        if self.sort_column not in keys:
            return self._order
        at = keys.index(self.sort_column)
        # Stable: rows that sort equal keep their natural order, whatever the direction.
        return sorted(self._order, key=lambda k: sort_value(self._rows[k][at]), reverse=self.sort_reverse)

    def _show(self) -> None:
        rows, order = self._rows, self._sorted_order()
        selected = self.selected_key
        present = {key.value for key in self.rows}
        for key in present - set(rows):
            self.remove_row(key)
        columns = list(self.columns)
        for key in order:
            cells = self._visible_cells(rows[key])
            if key not in present:
                self.add_row(*cells, key=key)
                continue
            for column, value in zip(columns, cells):
                if self.get_cell(key, column) != value:
                    self.update_cell(key, column, value, update_width=True)
        if [row.key.value for row in self.ordered_rows] != list(order):
            self._arrange(order)
            if selected in rows:
                self.move_cursor(row=self.get_row_index(selected), scroll=False)

    def _rebuild(self) -> None:
        """Columns changed (sort label, width, compact): lay them out anew, keeping the selection."""
        if not self.is_mounted:
            return
        selected = self.selected_key
        self.clear(columns=True)
        self._add_columns()
        self._show()
        if selected in self._rows:
            self.move_cursor(row=self.get_row_index(selected))

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # Textual measures new rows when idle, but keeps the lines it rendered (and
        # cached) before that with the header-wide columns: a table drawn in that gap
        # stayed cut ("2026-09-21 14:") until something else changed. Invalidate them.
        super()._update_dimensions(new_rows)
        self._update_count += 1
        self.refresh()

    def _arrange(self, order: Sequence[Hashable]) -> None:
        # DataTable.sort() sees cell values only, never row keys; ordering by key is
        # what `sort` does internally, so do the same with the wanted positions.
        from textual._two_way_dict import TwoWayDict

        self._row_locations = TwoWayDict({RowKey(key): i for i, key in enumerate(order)})
        self._update_count += 1
        self.refresh()

    def render_line(self, y: int) -> Strip:
        header = self.header_height if self.show_header else 0
        if self.row_count or y != header or not self._empty:
            return super().render_line(y)
        width = self.size.width
        style = self.rich_style + Style(italic=True)
        return Strip([Segment(" " + self._empty, style)]).crop(0, width).adjust_cell_length(width, self.rich_style)
