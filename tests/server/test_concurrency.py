"""Several server processes share one database: status changes stay compare-and-set."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from server_helpers import start_server, stop

from ferry.errors import InvalidTransition
from ferry.status import RunStatus
from ferry.tracking import RunRecord
from ferry.tracking.http import HttpRunStore, ServerConnection


def test_racing_endings_through_two_processes_exactly_one_wins(live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc, second, _log = start_server(
        live.database_url, tmp_path / "second", supervisors=0, env=live.env
    )
    try:
        stores = [
            HttpRunStore(ServerConnection(url, live.user_token)) for url in (live.url, second) * 8
        ]
        for attempt in range(5):
            run_id = f"race_{attempt}_{'ab' * 4}"
            stores[0].create_run(RunRecord(id=run_id, experiment="race", status=RunStatus.RUNNING))

            def end(index: int, run_id: str = run_id) -> RunStatus | None:
                wanted = RunStatus.COMPLETED if index % 2 else RunStatus.FAILED
                try:
                    return stores[index].set_status(run_id, wanted, expected=RunStatus.RUNNING)
                except InvalidTransition:
                    return None

            with ThreadPoolExecutor(len(stores)) as pool:
                results = list(pool.map(end, range(len(stores))))
            winners = [r for r in results if r is not None]
            assert len(winners) == 1, results
            assert stores[1].get_run(run_id).status == winners[0]
    finally:
        stop(proc)
