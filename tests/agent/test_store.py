"""The content-addressed store on hosts and nodes: verified copies, safe trees, packs, pieces."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from ferry.agent.files import PrivateFolderError, private_folder
from ferry.agent.store import Store, link_escapes


def _blob(store: Store, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = Path(store.blob(digest))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _manifest(entries: dict[str, Any]) -> dict[str, Any]:
    return {"algo": "sha256", "entries": entries, "version": 1}


def test_materialize_copies_modes_and_reports_corrupt_blobs(awkward_dir: Path) -> None:
    store = Store(str(awkward_dir / "work"))
    good = _blob(store, b"print('hi')\n")
    bad = _blob(store, b"original")
    Path(store.blob(bad)).write_bytes(b"tampered")
    entries = {
        "a b/run.sh": {"digest": good, "mode": 0o755, "size": 12},
        "x ü.txt": {"digest": bad, "mode": 0o644, "size": 8},
    }
    dest = awkward_dir / "wd"
    result = store.materialize(_manifest(entries), str(dest))
    assert result["missing"] == [bad]
    assert not dest.exists() and not Path(store.blob(bad)).exists()
    Path(store.blob(bad)).write_bytes(b"original")
    result = store.materialize(_manifest(entries), str(dest))
    assert result["missing"] == []
    assert (dest / "a b" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (dest / "x ü.txt").read_bytes() == b"original"


@pytest.mark.parametrize(
    "entries",
    [
        {"../evil": {"digest": "0" * 64, "mode": 0o644, "size": 0}},
        {"/abs": {"digest": "0" * 64, "mode": 0o644, "size": 0}},
        {"a": {"link": "x"}, "a/b": {"digest": "0" * 64, "mode": 0o644, "size": 0}},
    ],
)
def test_materialize_refuses_unsafe_manifests(awkward_dir: Path, entries: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Store(str(awkward_dir)).materialize(_manifest(entries), str(awkward_dir / "wd"))


def test_unpack_keeps_good_blobs_and_names_bad_ones(awkward_dir: Path) -> None:
    store = Store(str(awkward_dir))
    (awkward_dir / "tmp").mkdir()
    good, bad = b"good bytes", b"bad bytes"
    pack = b""
    for digest, data in ((hashlib.sha256(good).hexdigest(), good), ("f" * 64, bad)):
        pack += digest.encode() + len(data).to_bytes(8, "big") + data
        Path(store.blob(digest)).parent.mkdir(parents=True, exist_ok=True)
    (awkward_dir / "tmp" / "pack-1").write_bytes(pack)
    assert store.unpack("pack-1", "sha256") == ["f" * 64]
    assert Path(store.blob(hashlib.sha256(good).hexdigest())).read_bytes() == good
    assert not (awkward_dir / "tmp" / "pack-1").exists()


def test_blobs_arrive_in_pieces_and_are_verified(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    data = os.urandom(3000)
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(ValueError, match="corrupt"):
        store.put(digest, data[:-1] + b"!", 0, 3000, "sha256")
    assert store.missing([digest]) == [digest]
    assert store.put(digest, data[:1000], 0, 3000, "sha256") is False
    assert store.missing([digest]) == [digest]
    assert store.put(digest, data[1000:], 1000, 3000, "sha256") is True
    assert store.missing([digest]) == [] and Path(store.blob(digest)).read_bytes() == data


@pytest.mark.parametrize(
    ("path", "target", "escapes"),
    [
        ("a/link", "b", False),
        ("a/link", "../b", False),
        ("a/link", "../../b", True),
        ("link", "/etc/passwd", True),
        ("a/link", "x/../../b", True),
        ("link", "", True),
    ],
)
def test_links_that_may_leave_the_tree_are_named(path: str, target: str, escapes: bool) -> None:
    assert link_escapes(path, target) is escapes


def test_a_private_folder_is_made_closed_and_checked(tmp_path: Path) -> None:
    made = private_folder(str(tmp_path / "deep" / "node dir"))
    assert os.stat(made).st_mode & 0o777 == 0o700
    assert private_folder(made) == made  # the second time: checked, accepted
    os.chmod(made, 0o755)
    with pytest.raises(PrivateFolderError, match="chmod 700"):
        private_folder(made)
    link = tmp_path / "link"
    link.symlink_to(made)
    with pytest.raises(PrivateFolderError, match="link"):
        private_folder(str(link))
    assert os.getuid() == 0, "this check gives a folder to another user: run as root (as CI does)"
    other = tmp_path / "other's"
    other.mkdir(mode=0o700)
    os.chown(other, 65534, 65534)  # the tests run as root (sshd needs it): another owner
    with pytest.raises(PrivateFolderError, match="belongs to user id 65534"):
        private_folder(str(other))
