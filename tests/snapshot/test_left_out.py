"""What a snapshot leaves out on its own: files that look like secrets, and ferry workspaces.

Secrets are default ignore rules (re-includable with ``!``), each noted with the exact line
that takes it in; a workspace inside the source folder is never taken (issue 9, point 7 and
"Also fix").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from snapshot_helpers import write

from ferry.errors import SnapshotError
from ferry.snapshot import LocalBlobStore, MemoryBlobStore, preview, take_snapshot
from ferry.snapshot.ignore import default_rules
from ferry.snapshot.walk import walk

SECRETS = [
    ".env", ".env.local", ".env.production", "config/.env", "certs/server.pem", "tls.key",
    "id_rsa", ".ssh/id_ed25519", "id_ecdsa", "id_dsa", "client.p12", "client.pfx", ".netrc",
    ".pgpass", ".git-credentials", "vault.kdbx",
]  # fmt: skip
NOT_SECRETS = [
    ".env.example", ".env.sample", ".env.template", ".env.dist", "id_rsa.pub", "keys.py",
    "environment.yml", "train.py", "pem.txt", "my.env.py",
]  # fmt: skip


def kept(root: Path) -> set[str]:
    return {f[0] for f in walk(root).files}


@pytest.mark.parametrize("path", SECRETS)
def test_files_that_look_like_secrets_are_left_out_by_default(path: str) -> None:
    rule = default_rules().match(path)
    assert rule is not None and rule.exclude and rule.source == "default"


@pytest.mark.parametrize("path", NOT_SECRETS)
def test_templates_public_keys_and_lookalikes_are_kept(path: str) -> None:
    rule = default_rules().match(path)
    assert rule is None or not rule.exclude


def test_each_secret_left_out_gets_a_note_saying_how_to_take_it_in(tmp_path: Path) -> None:
    for rel in [*SECRETS, *NOT_SECRETS]:
        write(tmp_path / rel, "TOKEN=hunter2\n")
    tree = walk(tmp_path)
    assert {f[0] for f in tree.files} == set(NOT_SECRETS)
    assert sorted(tree.secrets) == sorted(SECRETS)
    notes = [n for n in tree.notes() if "looks like a secret" in n]
    assert len(notes) == len(SECRETS)
    assert any(
        "'config/.env' looks like a secret" in n and n.endswith(": !/config/.env") for n in notes
    )
    assert all("to .ferryignore in the source folder: !/" in n for n in notes)


@pytest.mark.parametrize("ignore_file", [".ferryignore", ".amlignore", ".gitignore"])
def test_the_line_a_note_suggests_takes_the_secret_in(tmp_path: Path, ignore_file: str) -> None:
    """Follow the note literally (with awkward names): the file is then in the snapshot, and
    the note names the ignore file already used, so adding to it changes nothing else."""
    awkward = ["dir with space/.env", "certs/a*b [1].pem", "sub/.env.trailing ", "ünï/.env.prod"]
    for rel in awkward:
        write(tmp_path / rel, "secret")
    write(tmp_path / "other.key", "stays out")
    write(tmp_path / ignore_file, "build/\n")
    tree = walk(tmp_path)
    lines = []
    for note in tree.notes():
        if any(repr(rel) in note for rel in awkward):
            lines.append(note.split(f"to {ignore_file} in the source folder: ", 1)[1])
    assert len(lines) == len(awkward)
    with (tmp_path / ignore_file).open("a") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
    assert kept(tmp_path) == {ignore_file, *awkward}
    assert walk(tmp_path).secrets == ["other.key"]


def test_a_user_can_take_every_env_file_in(tmp_path: Path) -> None:
    write(tmp_path / ".env", "A=1")
    write(tmp_path / "sub/.env", "B=2")
    write(tmp_path / ".gitignore", "!.env\n")
    assert kept(tmp_path) == {".gitignore", ".env", "sub/.env"}
    assert walk(tmp_path).secrets == []


def test_a_snapshot_stores_no_byte_of_a_secret(tmp_path: Path) -> None:
    write(tmp_path / "src/train.py", "print('hi')\n")
    write(tmp_path / "src/.env", "AWS_SECRET_ACCESS_KEY=abc123-very-secret\n")
    store = LocalBlobStore(tmp_path / "blobs")
    result = take_snapshot(tmp_path / "src", store, tmp_path / "cache")
    assert set(result.manifest.entries) == {"train.py"}
    assert any("'.env' looks like a secret" in w for w in result.warnings)
    for blob in (tmp_path / "blobs").rglob("*"):
        if blob.is_file():
            assert b"very-secret" not in blob.read_bytes()


def test_preview_lists_secrets_with_a_note(tmp_path: Path) -> None:
    write(tmp_path / "train.py", "x")
    write(tmp_path / ".env", "TOKEN=1")
    write(tmp_path / "keys/deploy.pem", "-----BEGIN PRIVATE KEY-----")
    p = preview(tmp_path)
    assert p.secrets == (".env", "keys/deploy.pem") and p.files == 1
    report = p.format()
    assert "'.env' looks like a secret: left out" in report and "folder: !/.env\n" in report
    assert "'keys/deploy.pem' looks like a secret" in report
    assert json.loads(json.dumps(p.to_dict()))["secrets"] == [".env", "keys/deploy.pem"]


# --- workspaces ---------------------------------------------------------------------------


def make_workspace(folder: Path, *, with_db: bool = True) -> None:
    """The layout Workspace.create makes; the database appears when the store is opened."""
    for sub in ("runs", "blobs", "envs", "cache"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write(folder / "blobs/ab/cdef", "a blob")
    write(folder / "runs/r1/log.txt", "a run's log")
    if with_db:
        write(folder / "ferry.db", "SQLite format 3\0")


@pytest.mark.parametrize("with_db", [True, False], ids=["opened", "before-the-database"])
def test_a_workspace_inside_the_source_folder_is_left_out(tmp_path: Path, with_db: bool) -> None:
    src = tmp_path / "project"
    write(src / "train.py", "print(1)\n")
    make_workspace(src / "ferry home", with_db=with_db)  # FERRY_HOME under the project
    make_workspace(src / "deep/er/ws")
    result = take_snapshot(src, MemoryBlobStore(), tmp_path / "cache")
    assert set(result.manifest.entries) == {"train.py"}
    assert sum("is a ferry workspace: left out" in w for w in result.warnings) == 2
    p = preview(src)
    assert p.workspaces == ("deep/er/ws/", "ferry home/")
    effects = {(e.source, e.pattern): e.files for e in p.removed}
    assert effects[("ferry workspace", "ferry home/")] == (3 if with_db else 2)


def test_a_folder_with_only_some_workspace_names_is_kept(tmp_path: Path) -> None:
    write(tmp_path / "data/blobs/x.bin", "user data")
    write(tmp_path / "data/runs/r.csv", "user data")
    write(tmp_path / "db/ferry.db", "a user's own database")
    assert kept(tmp_path) == {"data/blobs/x.bin", "data/runs/r.csv", "db/ferry.db"}


def test_explicit_excludes_leave_out_folders_and_files(tmp_path: Path) -> None:
    src = tmp_path / "project"
    write(src / "train.py", "x")
    write(src / "scratch ws/anything", "x")  # not (yet) recognisable as a workspace
    write(src / "big.bin", "x")
    result = take_snapshot(
        src,
        MemoryBlobStore(),
        tmp_path / "cache",
        exclude=[src / "scratch ws", src / "big.bin", tmp_path / "elsewhere"],
    )
    assert set(result.manifest.entries) == {"train.py"}
    assert sum("excluded by the caller" in w for w in result.warnings) == 2


def test_an_exclude_given_through_a_link_still_applies(tmp_path: Path) -> None:
    src = tmp_path / "project"
    write(src / "train.py", "x")
    write(src / "ws/file", "x")
    (tmp_path / "ws link").symlink_to(src / "ws")
    result = take_snapshot(
        src, MemoryBlobStore(), tmp_path / "cache", exclude=[tmp_path / "ws link"]
    )
    assert set(result.manifest.entries) == {"train.py"}


def test_the_workspace_itself_as_the_source_folder_is_refused(tmp_path: Path) -> None:
    make_workspace(tmp_path / "ws")
    with pytest.raises(SnapshotError, match="is the ferry workspace itself"):
        take_snapshot(
            tmp_path / "ws", MemoryBlobStore(), tmp_path / "cache", exclude=[tmp_path / "ws"]
        )


@pytest.mark.parametrize("open_store", [True, False], ids=["store-opened", "just-created"])
def test_ferry_home_under_the_project_is_never_snapshotted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_store: bool
) -> None:
    """The real thing: FERRY_HOME inside the source folder, snapshotted into itself."""
    from ferry.workspace import Workspace

    src = tmp_path / "project"
    write(src / "train.py", "print('hi')\n")
    monkeypatch.setenv("FERRY_HOME", str(src / ".." / "project" / "ferry home"))
    ws = Workspace.from_config(src)
    try:
        if open_store:
            ws.store.list_targets()  # opens ferry.db (and its WAL)
        for _ in range(2):  # the second snapshot sees the first one's blobs and stat cache
            result = take_snapshot(src, ws.blobs, ws.cache_dir / "snapshots")
            assert set(result.manifest.entries) == {"train.py"}
            assert any("'ferry home/' is a ferry workspace" in w for w in result.warnings)
    finally:
        if ws._store is not None:
            ws.store.close()
