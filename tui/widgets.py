"""Widgets of the dashboard: header line, workers table, heatmap, sparkline panel."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable, Static

from mpls_celery.telemetry.worker_table import COLUMNS, WorkerRow, worker_cells
from tui.model import Dashboard

SORT_KEYS = ("worker", "iter", "loss", "acc", "heartbeat")
SHADES = " ░▒▓█"


class HeaderBar(Static):
    def show(self, data: Dashboard, paused: bool) -> None:
        acc = "—" if data.mean_acc is None else f"{100 * data.mean_acc:.1f} %"
        best = "—" if data.best_acc is None else f"{100 * data.best_acc:.1f} %"
        link = "" if data.connected else "  [b red]DISCONNECTED[/] — retrying"
        pause = "  [b yellow]PAUSED[/]" if paused else ""
        refused = f"  ·  [b red]{data.refused} refused[/]" if data.refused else ""
        self.update(
            f"[b]{data.run_id}[/] · {data.algorithm} · {data.model}/{data.dataset} · {data.topology}"
            f"  ·  {data.status}  ·  {data.elapsed:.0f}s  ·  mean acc {acc}  ·  best {best}"
            f"{refused}{link}{pause}"
        )


def sort_rows(rows: list[WorkerRow], key: str) -> list[WorkerRow]:
    if key == "iter":
        return sorted(rows, key=lambda r: -r.k)
    if key == "loss":
        return sorted(rows, key=lambda r: (r.loss is None, r.loss or 0.0))
    if key == "acc":
        return sorted(rows, key=lambda r: (r.acc is None, -(r.acc or 0.0)))
    if key == "heartbeat":
        return sorted(rows, key=lambda r: -(r.heartbeat_age or 0.0))
    return rows


class WorkersTable(DataTable[Text | str]):
    COLUMNS = COLUMNS

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for column in self.COLUMNS:
            self.add_column(column, key=column)

    def show(self, rows: list[WorkerRow], selected: int) -> None:
        """Update cells in place while the row order holds (no cursor events); rebuild otherwise,
        without announcing the programmatic cursor moves as user selections."""
        keys = [str(r.worker) for r in rows]
        cells = {str(r.worker): worker_cells(r) for r in rows}
        if keys == [row.value for row in self.rows]:
            for key, values in cells.items():
                for column, value in zip(self.COLUMNS, values, strict=True):
                    self.update_cell(key, column, value)
            return
        with self.prevent(DataTable.RowHighlighted):
            self.clear()
            for key in keys:
                self.add_row(*cells[key], key=key)
            index = next((i for i, r in enumerate(rows) if r.worker == selected), 0)
            if rows:
                self.move_cursor(row=index, animate=False)


def sparkline(values: list[float], width: int = 40) -> str:
    if not values:
        return "—"
    tail = values[-width:]
    low, high = min(tail), max(tail)
    span = (high - low) or 1.0
    bars = "▁▂▃▄▅▆▇█"
    return "".join(bars[min(7, int((v - low) / span * 7.999))] for v in tail)


class Trends(Static):
    def show(self, data: Dashboard, selected: int) -> None:
        def fmt(values: list[float], pct: bool) -> str:
            if not values:
                return "—"
            last = f"{100 * values[-1]:.1f} %" if pct else f"{values[-1]:.3f}"
            return f"{sparkline(values)} {last}"

        self.update(
            f"run acc   {fmt(data.acc_history, True)}\n"
            f"run loss  {fmt(data.loss_history, False)}\n"
            f"w{selected} acc   {fmt(data.worker_acc_history, True)}\n"
            f"w{selected} loss  {fmt(data.worker_loss_history, False)}"
        )


class Heatmap(Static):
    """Peer × layer pull counts of the selected worker over its recent iterations."""

    def show(self, data: Dashboard, selected: int) -> None:
        if not data.heatmap:
            self.update(f"worker {selected}: no pulls yet")
            return
        layers = len(data.heatmap[0])
        peak = max(max(row) for row in data.heatmap) or 1
        table = Table(
            title=f"layers pulled by worker {selected} (recent iterations)",
            box=None,
            padding=(0, 1),
        )
        table.add_column("peer", justify="right")
        for layer in range(layers):
            table.add_column(f"L{layer}", justify="center")
        for peer, row in zip(data.heatmap_peers, data.heatmap, strict=True):
            cells = [
                Text(SHADES[min(4, round(4 * c / peak))] * 3 + f"{c:>3}", style="cyan") for c in row
            ]
            table.add_row(str(peer), *cells)
        self.update(table)
