"""Helpers of the Docker tests: Docker runs of the conformance suite, images on the engine."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.run import Run
from ferry.runconfig import DockerConfiguration
from ferry.testing.conformance import ConformanceEnv


def bind(path: Path) -> list[str]:
    """``docker run`` arguments mounting ``path`` at the same place (any characters)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(["type=bind", f"source={path}", f"target={path}"])
    return ["--mount", out.getvalue()]


@dataclass
class DockerConformanceEnv(ConformanceEnv):
    """The suite's runs in containers (``DockerConfiguration(use_docker=True)``: ferry's default
    base image). The scenarios' flag and pid files live in the scratch folder, which the run
    mounts with its own ``arguments``, as a user would."""

    def submit(self, name: str, body: str, **kwargs: Any) -> Run:
        self.scratch.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault(
            "docker_runtime_config",
            DockerConfiguration(use_docker=True, arguments=bind(self.scratch)),
        )
        return super().submit(name, body, **kwargs)


def ferry_images(client: Any) -> set[str]:
    """Tags of the environment images on the engine."""
    return {t for image in client.images.list("ferry-env") for t in image.tags}
