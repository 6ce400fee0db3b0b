"""A DataTable that follows fresh data without losing the operator's place.

`DataTable.clear()` drops the cursor and the scroll position, so a table that is
redrawn every second would be unusable. Instead rows are matched by key: gone
rows are removed, new rows added, and only cells whose value changed are
updated. Callers wrap `sync` in `app.batch_update()` so one refresh paints once.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey


class LiveTable(DataTable):
    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    """

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], **kwargs: object) -> None:
        """columns: (key, label, width or None for automatic)."""
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        kwargs.setdefault("cell_padding", 1)
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._column_spec = columns

    def on_mount(self) -> None:
        for key, label, width in self._column_spec:
            self.add_column(label, key=key, width=width)

    def sync(self, rows: Mapping[Hashable, Sequence[object]], order: Sequence[Hashable]) -> None:
        """Show `rows` (key -> cells in column order) in `order`, touching only what changed."""
        selected = self.selected_key
        present = {key.value for key in self.rows}
        for key in present - set(rows):
            self.remove_row(key)
        columns = list(self.columns)
        for key in order:
            cells = rows[key]
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

    def _arrange(self, order: Sequence[Hashable]) -> None:
        # DataTable.sort() sees cell values only, never row keys; ordering by key is
        # what `sort` does internally, so do the same with the wanted positions.
        from textual._two_way_dict import TwoWayDict

        self._row_locations = TwoWayDict({RowKey(key): i for i, key in enumerate(order)})
        self._update_count += 1
        self.refresh()
