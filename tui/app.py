"""The Textual app. `create_app(source, run_id)` builds it for a live Redis or a run directory;
tests point it at fixture data. Polling runs in a thread worker, never in the event loop."""

from __future__ import annotations

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Log

from tui.model import Dashboard
from tui.screens import HelpScreen, LinksScreen, RunPicker, WorkerScreen
from tui.sources import Source
from tui.widgets import SORT_KEYS, HeaderBar, Heatmap, Trends, WorkersTable, sort_rows


class MplsTui(App[None]):
    CSS_PATH = "mpls.tcss"
    TITLE = "mpls"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        Binding("j", "cursor(1)", "down", show=False),
        Binding("k", "cursor(-1)", "up", show=False),
        Binding("enter", "detail", "detail"),
        Binding("h", "toggle_heatmap", "heatmap"),
        Binding("l", "links", "links"),
        Binding("s", "sort", "sort"),
        Binding("p", "pause", "pause"),
        Binding("r", "switch_run", "runs"),
    ]

    def __init__(
        self, source: Source, run_id: str | None = None, refresh_seconds: float = 0.5
    ) -> None:
        super().__init__()
        self.source = source
        self.run_id = run_id
        self.refresh_seconds = refresh_seconds
        self.selected = 0
        self.sort_key = SORT_KEYS[0]
        self.paused = False
        self.data = Dashboard(run_id=run_id or "(no run)")
        self._shown_events: list[str] = []

    # typed access to widgets (method calls go down)
    @property
    def header(self) -> HeaderBar:
        return self.query_one("#header", HeaderBar)

    @property
    def table(self) -> WorkersTable:
        return self.query_one("#workers", WorkersTable)

    @property
    def heatmap(self) -> Heatmap:
        return self.query_one("#heatmap", Heatmap)

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Vertical(id="body"):
            yield WorkersTable(id="workers")
            with Horizontal(id="side"):
                yield Trends(id="trends")
                yield Heatmap(id="heatmap")
            yield Log(id="events", max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        self.poll()
        self.set_interval(self.refresh_seconds, self.poll)

    # data flow ---------------------------------------------------------------------------------
    def poll(self) -> None:
        if not self.paused:
            self.fetch()

    @work(thread=True, exclusive=True, group="poll")
    def fetch(self) -> None:
        try:
            if self.run_id is None:
                runs = self.source.runs()
                active = [r for r in runs if r.status == "running"] or runs
                if not active:
                    self.call_from_thread(
                        self.render_data, Dashboard(run_id="(no runs yet)", message="waiting")
                    )
                    return
                self.run_id = active[0].run_id
            data = self.source.fetch(self.run_id, self.selected)
        except Exception as exc:  # Redis went away, run vanished: show it, keep polling
            stale = self.data
            data = Dashboard(**{**stale.__dict__, "connected": False, "message": str(exc)})
        try:
            self.call_from_thread(self.render_data, data)
        except (NoMatches, RuntimeError):
            if self.is_running:
                raise  # a real error in rendering
            # else a refresh that landed while the app exited: its loop and widgets are gone

    def render_data(self, data: Dashboard) -> None:
        self.data = data
        self.header.show(data, self.paused)
        self.table.show(sort_rows(data.workers, self.sort_key), self.selected)
        self.query_one(Trends).show(data, self.selected)
        self.heatmap.show(data, self.selected)
        log = self.query_one(Log)
        new = [
            line for line in data.events if line not in self._shown_events[-len(data.events) - 50 :]
        ]
        if new:
            log.write_lines(new)
            self._shown_events = (self._shown_events + new)[-1000:]

    # actions -----------------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#workers")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            worker = int(event.row_key.value)
            if worker != self.selected:
                self.selected = worker
                self.fetch()

    @on(DataTable.RowSelected, "#workers")
    def _row_selected(self) -> None:
        self.action_detail()  # enter on the table

    def action_cursor(self, step: int) -> None:
        table = self.table
        table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + step)))

    def action_detail(self) -> None:
        self.push_screen(WorkerScreen(self.data, self.selected))

    def action_links(self) -> None:
        self.push_screen(LinksScreen(self.data))

    def action_toggle_heatmap(self) -> None:
        self.heatmap.toggle_class("hidden")

    def action_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self.notify(f"sorted by {self.sort_key}", timeout=1.5)
        self.render_data(self.data)

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.header.show(self.data, self.paused)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    @work(exclusive=True, group="picker")
    async def action_switch_run(self) -> None:
        runs = self.source.runs()
        choice = await self.push_screen_wait(RunPicker(runs))
        if choice:
            self.run_id, self.selected = choice, 0
            self._shown_events.clear()
            self.query_one(Log).clear()
            self.fetch()


def create_app(source: Source, run_id: str | None = None, refresh_seconds: float = 0.5) -> MplsTui:
    return MplsTui(source, run_id, refresh_seconds)
