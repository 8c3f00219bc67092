"""Run the real CLI entry point in-process and capture what a user would see."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ferry.cli.main import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def ferry(capsys: pytest.CaptureFixture[str], awkward_dir: Path) -> Callable[..., Result]:
    ws = awkward_dir / "cli ws"

    def invoke(*args: str, workspace: Path | None = ws) -> Result:
        argv = (["--workspace", str(workspace)] if workspace else []) + list(args)
        capsys.readouterr()
        try:
            main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
        else:  # pragma: no cover - main always exits
            code = 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
