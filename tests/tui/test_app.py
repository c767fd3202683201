"""Pilot tests against runs in a real Redis; snapshots on fixed data; round trips per refresh."""

import pytest
import redis
from textual.widgets import DataTable

from mpls_celery.runtime.backend.connection import redis_client
from mpls_celery.telemetry.states import WorkerState
from tests.tui.fixtures import FIXED, StaticSource, age, populate
from tui.app import create_app
from tui.screens import HelpScreen, LinksScreen, RunPicker, WorkerScreen
from tui.sources import RedisSource

pytestmark = pytest.mark.integration


async def settle(pilot, app, check, tries: int = 60):  # type: ignore[no-untyped-def]
    for _ in range(tries):
        await pilot.pause(0.05)
        if check():
            return
    raise AssertionError("condition never held")


def states(app) -> list[str]:  # type: ignore[no-untyped-def]
    table = app.query_one("#workers", DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


async def test_rows_appear_update_and_a_silent_worker_turns_dead(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = populate(client, "run-a", workers=4, iterations=3)
    app = create_app(
        # windows far longer than the test: a busy machine must not age the other workers
        RedisSource(client, stale_after=60.0, dead_after=120.0),
        "run-a",
        refresh_seconds=0.1,
    )
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot, app, lambda: app.query_one("#workers", DataTable).row_count == 4)
        assert "run-a" in str(app.header.render())
        store.nodes.update(2, state=WorkerState.TRAINING, k=9)
        await settle(
            pilot, app, lambda: str(app.query_one("#workers", DataTable).get_row_at(2)[2]) == "9"
        )
        age(client, store, 3, 300.0)
        await settle(pilot, app, lambda: states(app)[3] == "dead")
        assert states(app)[:3] == ["idle", "idle", "training"]


async def test_keys_select_sort_toggle_pause_help_detail(redis_url):
    client = redis.Redis.from_url(redis_url)
    populate(client, "run-b", workers=4, iterations=4)
    app = create_app(RedisSource(client), "run-b", refresh_seconds=0.2)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot, app, lambda: app.query_one("#workers", DataTable).row_count == 4)
        await pilot.press("j", "j")
        await settle(pilot, app, lambda: app.selected == 2)
        await pilot.press("k")
        await settle(pilot, app, lambda: app.selected == 1)
        await settle(
            pilot, app, lambda: app.data.heatmap_peers == [0, 2]
        )  # worker 1 pulls from 0 and 2
        await pilot.press("h")
        assert app.heatmap.has_class("hidden")
        await pilot.press("h", "s")
        assert not app.heatmap.has_class("hidden") and app.sort_key == "iter"
        await pilot.press("p")
        assert app.paused and "PAUSED" in str(app.header.render())
        await pilot.press("p", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "enter")
        assert isinstance(app.screen, WorkerScreen)
        await pilot.press("escape", "q")
    assert app.return_code == 0


async def test_links_view_shows_every_link_with_its_speed_bytes_and_last_pull(redis_url):
    client = redis.Redis.from_url(redis_url)
    populate(client, "run-links", workers=3, iterations=4)  # each worker pulls from the other two
    app = create_app(RedisSource(client), "run-links", refresh_seconds=0.2)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot, app, lambda: len(app.data.links) == 6)
        await pilot.press("l")
        await settle(pilot, app, lambda: isinstance(app.screen, LinksScreen))
        table = app.screen.query_one("#links-table", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        # puller, peer, the puller's speed estimate (Mbit/s), MB over 4 pulls, pulls, last pull
        assert rows[0] == ["0", "1", "16.00", "0.16", "4", "4.0"]
        assert [r[:2] for r in rows] == [
            ["0", "1"],
            ["0", "2"],
            ["1", "0"],
            ["1", "2"],
            ["2", "0"],
            ["2", "1"],
        ]
        assert rows[-1] == ["2", "1", "16.00", "0.16", "4", "4.0"]
        await pilot.press("escape")
        await settle(pilot, app, lambda: not isinstance(app.screen, LinksScreen))


async def test_run_switching(redis_url):
    client = redis.Redis.from_url(redis_url)
    populate(client, "run-old", workers=2, iterations=2, algorithm="appg")
    populate(client, "run-new", workers=3, iterations=2)
    app = create_app(RedisSource(client), None, refresh_seconds=0.2)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot, app, lambda: app.data.run_id == "run-new")  # newest active run
        await pilot.press("r")
        await settle(pilot, app, lambda: isinstance(app.screen, RunPicker))
        await pilot.press("down", "enter")
        await settle(
            pilot, app, lambda: app.data.run_id == "run-old" and app.data.algorithm == "appg"
        )
        assert app.query_one("#workers", DataTable).row_count == 2


async def test_redis_going_away_shows_disconnected():
    client = redis_client("redis://127.0.0.1:1/0", timeout=0.1, retries=0)
    app = create_app(RedisSource(client), "gone", refresh_seconds=0.2)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot, app, lambda: "DISCONNECTED" in str(app.header.render()))


class CountingConnection(redis.Connection):
    sends = 0

    def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        CountingConnection.sends += 1
        return super().send_packed_command(command, check_health)


def test_one_refresh_of_100_workers_is_one_round_trip(redis_url):
    plain = redis.Redis.from_url(redis_url)
    populate(plain, "big", workers=100, iterations=3)
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    source = RedisSource(redis.Redis(connection_pool=pool))
    source.fetch("big", 0)  # first fetch also reads the run config
    CountingConnection.sends = 0
    data = source.fetch("big", 7)
    assert CountingConnection.sends == 1
    assert len(data.workers) == 100 and data.heatmap_peers


def test_snapshot_main_screen(snap_compare):
    assert snap_compare(
        create_app(StaticSource(FIXED), FIXED.run_id, refresh_seconds=60), terminal_size=(130, 40)
    )


def test_snapshot_worker_detail_with_heatmap(snap_compare):
    app = create_app(StaticSource(FIXED), FIXED.run_id, refresh_seconds=60)
    assert snap_compare(app, press=["enter"], terminal_size=(130, 40))
