"""``ferry runs restore|diff|rerun`` and ``ferry snapshot preview``."""

from __future__ import annotations

from pathlib import Path


def test_restore_diff_rerun_and_preview(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    src = awkward_dir / "p"
    src.mkdir()
    (src / "train.py").write_text("print(open('d.txt').read())\n")
    (src / "d.txt").write_text("one\n")
    (src / ".ferryignore").write_text("*.bin\n")
    (src / "big.bin").write_bytes(b"x" * 1000)
    a = ferry("submit", str(src / "train.py"), "-e", "s", "--json").json()["runId"]
    (src / "d.txt").write_text("two\n")
    b = ferry("submit", str(src / "train.py"), "-e", "s", "--json").json()["runId"]

    out = awkward_dir / "restored"
    res = ferry("runs", "restore", a, "-o", str(out))
    assert (
        res.code == 0 and (out / "d.txt").read_text() == "one\n" and not (out / "big.bin").exists()
    )
    res = ferry("runs", "restore", a, "-o", str(awkward_dir / "arch"), "--zip")
    assert res.code == 0 and res.out.strip().endswith("arch.zip")

    res = ferry("runs", "diff", a, b)
    assert res.code == 0 and "M d.txt" in res.out and "+two" in res.out
    assert ferry("runs", "diff", a, a).out.strip() == "the two snapshots are identical"

    res = ferry("runs", "rerun", a)
    assert res.code == 0 and "one" in res.out

    res = ferry("snapshot", "preview", str(src), "--json")
    assert res.code == 0
    data = res.json()
    assert data["files"] == 3

    res = ferry("snapshot", "preview", str(awkward_dir / "missing"))
    assert res.code == 2 and "not a folder" in res.err
    res = ferry("runs", "restore", "nope_1_deadbeef", "-o", str(awkward_dir / "z"))
    assert res.code == 2
