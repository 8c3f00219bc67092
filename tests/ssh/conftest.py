"""The SSH target's tests that live here use the real sshd of tests/targets/sshd.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "targets"))
