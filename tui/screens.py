"""Screens: worker detail, help, and the run picker. The main view is the app's own screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

from tui.model import Dashboard
from tui.sources import RunInfo
from tui.widgets import Heatmap, Trends

HELP = """\
[b]mpls tui[/b] — keys
  ↑/↓ or j/k   select a worker        enter   worker detail
  h            toggle the heatmap     s       cycle the sort column
  l            links (puller ← peer: speed, bytes, last pull)
  p            pause / resume         r       switch run
  ?            this help              q       quit
States: training, pulling (waiting for its aggregation), idle (between slices), finished;
[black on yellow]stale[/] after the stale timeout without a heartbeat, [white on red]dead[/] after the dead timeout;
[bold yellow]retrying[/] when its last slice failed at this iteration (three in a row fail the worker)."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        yield Vertical(Static(HELP, id="help-text"), id="help-box")


class WorkerScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "back")]

    def __init__(self, data: Dashboard, worker: int) -> None:
        super().__init__()
        self.data, self.worker = data, worker

    def compose(self) -> ComposeResult:
        row = next((r for r in self.data.workers if r.worker == self.worker), None)
        detail = (
            "no data"
            if row is None
            else (
                f"[b]worker {row.worker}[/]  state {row.state}  iteration {row.k}  version {row.version}\n"
                f"loss {row.loss}  accuracy {row.acc}  last pull {row.last_pull}"
            )
        )
        with Vertical(id="detail-box"):
            yield Static(detail, id="detail-text")
            trends = Trends(id="detail-trends")
            heat = Heatmap(id="detail-heatmap")
            yield trends
            yield heat
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Trends).show(self.data, self.worker)
        self.query_one(Heatmap).show(self.data, self.worker)


class LinksScreen(ModalScreen[None]):
    """Every link that carried a pull: puller ← peer, the speed the puller's scheduler uses for
    it, the bytes and pulls that crossed it, and the run time of the last one."""

    BINDINGS = [Binding("escape,q,l", "dismiss", "back")]
    COLUMNS = ("puller", "peer", "Mbit/s", "MB pulled", "pulls", "last pull (s)")

    def __init__(self, data: Dashboard) -> None:
        super().__init__()
        self.data = data

    def compose(self) -> ComposeResult:
        title = f"[b]links of {self.data.run_id}[/]" + ("" if self.data.links else ": no pulls yet")
        with Vertical(id="links-box"):
            yield Static(title)
            yield DataTable(id="links-table", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#links-table", DataTable)
        table.add_columns(*self.COLUMNS)
        for row in self.data.links:
            table.add_row(
                str(row.puller),
                str(row.peer),
                "—" if row.mbit is None else f"{row.mbit:.2f}",
                f"{row.megabytes:.2f}",
                str(row.pulls),
                "—" if row.last_t is None else f"{row.last_t:.1f}",
            )


class RunPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape,q", "cancel", "cancel")]

    def __init__(self, runs: list[RunInfo]) -> None:
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        options = [
            Option(
                f"{r.run_id}  {r.status:<9} {r.algorithm:<10} {r.workers:>3} workers  {r.age:6.0f}s ago",
                id=r.run_id,
            )
            for r in self.runs
        ]
        yield Vertical(
            Static("[b]choose a run[/]"), OptionList(*options, id="run-list"), id="picker-box"
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
