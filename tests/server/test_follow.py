"""Following a run on a server: the folder request waits for news instead of being polled.

A follower sends the last ``mark`` it saw and a ``wait``; the server answers as soon as the
run's folder differs from that state (a log grew, the run ended), else when the wait is over.
The client's copy of the folder follows the server's within a fraction of a second.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from ferry.tracking import RunRecord
from ferry.tracking.http import HttpRunStore, ServerConnection


def _run(thread_server: Any) -> tuple[str, Path]:
    run_id = f"follow_{uuid.uuid4().hex[:8]}"
    services = thread_server.services
    services.store.create_run(RunRecord(id=run_id, experiment="follow"))
    folder = services.workspace.runs_dir / run_id
    (folder / "user_logs").mkdir(parents=True)
    (folder / "user_logs" / "std_log.txt").write_text("first\n")
    return run_id, folder


def _folder(thread_server: Any, run_id: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(
        f"{thread_server.url}/api/v1/runs/{run_id}/folder",
        params=params,
        headers={"Authorization": f"Bearer {thread_server.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_an_unchanged_folder_is_answered_when_the_wait_is_over(thread_server: Any) -> None:
    run_id, _ = _run(thread_server)
    state = _folder(thread_server, run_id)
    assert state["logs"] == {"user_logs/std_log.txt": 6} and state["done"] is False
    started = time.monotonic()
    again = _folder(thread_server, run_id, known=state["mark"], wait=0.4)
    assert time.monotonic() - started >= 0.4
    assert again["mark"] == state["mark"]


def test_a_growing_log_and_the_run_s_end_answer_at_once(thread_server: Any) -> None:
    run_id, folder = _run(thread_server)
    mark = _folder(thread_server, run_id)["mark"]

    def later(action: Any) -> None:
        threading.Timer(0.2, action).start()

    later(lambda: (folder / "user_logs" / "std_log.txt").write_text("first\nsecond\n"))
    started = time.monotonic()
    grown = _folder(thread_server, run_id, known=mark, wait=8)
    assert time.monotonic() - started < 4, "the answer waited for the whole wait"
    assert grown["logs"] == {"user_logs/std_log.txt": 13} and grown["mark"] != mark

    later(lambda: (folder / "done").touch())
    ended = _folder(thread_server, run_id, known=grown["mark"], wait=8)
    assert ended["done"] is True


def test_a_wait_beyond_the_limit_is_refused(thread_server: Any) -> None:
    run_id, _ = _run(thread_server)
    response = httpx.get(
        f"{thread_server.url}/api/v1/runs/{run_id}/folder",
        params={"known": "x", "wait": 3600},
        headers={"Authorization": f"Bearer {thread_server.token}"},
    )
    assert response.status_code == 422 and "wait" in response.text


def test_the_client_s_copy_follows_the_server_s_folder(thread_server: Any, tmp_path: Path) -> None:
    run_id, folder = _run(thread_server)
    store = HttpRunStore(ServerConnection(thread_server.url, thread_server.token), tmp_path)
    try:
        store.follow(run_id)
        copy = tmp_path / run_id / "user_logs" / "std_log.txt"
        deadline = time.monotonic() + 10
        while not (copy.exists() and copy.read_text() == "first\n"):
            assert time.monotonic() < deadline, "the first log line never reached the copy"
            time.sleep(0.01)
        with open(folder / "user_logs" / "std_log.txt", "a") as log:
            log.write("second\n")
        (folder / "done").touch()
        deadline = time.monotonic() + 10
        while not (tmp_path / run_id / "done").exists():
            assert time.monotonic() < deadline, "the run's end never reached the copy"
            time.sleep(0.01)
        assert copy.read_text() == "first\nsecond\n"
    finally:
        store.close()


def test_closing_the_store_while_it_follows_a_run_ends_the_follower_quietly(
    thread_server: Any, tmp_path: Path
) -> None:
    run_id, _ = _run(thread_server)
    store = HttpRunStore(ServerConnection(thread_server.url, thread_server.token), tmp_path)
    failures: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)  # type: ignore[assignment]
    try:
        store.follow(run_id)
        copy = tmp_path / run_id / "user_logs" / "std_log.txt"
        deadline = time.monotonic() + 10
        while not copy.exists():  # the follower is now waiting on the server for news
            assert time.monotonic() < deadline, "the follower never copied the log"
            time.sleep(0.01)
        store.close()
        follower = next(t for t in threading.enumerate() if t.name == f"ferry-follow-{run_id}")
        follower.join(timeout=HttpRunStore.FOLLOW_WAIT + 5)
        assert not follower.is_alive() and failures == []
    finally:
        threading.excepthook = previous
