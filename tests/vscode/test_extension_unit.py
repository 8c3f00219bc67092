"""The extension's own unit tests (node's test runner, only `vscode` faked) and its packaging
facts, run by `make test` through pytest: the job file it writes is one ferry reads."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import codeserver

EXT = codeserver.ROOT / "editors" / "vscode"


def _node_ready() -> str:
    node = shutil.which("node")
    assert node, "the extension's tests need Node.js 20 (run scripts/sysdeps.sh as root)"
    assert (EXT / "node_modules" / "esbuild").is_dir(), (
        "the extension's build tools are not installed: run `make vsix` (npm ci in editors/vscode)"
    )
    return node


def test_node_unit_tests_pass() -> None:
    node = _node_ready()
    built = subprocess.run(
        [node, "build.mjs", "--tests"], cwd=EXT, capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    ran = subprocess.run(
        [node, "--test", "out-test/"], cwd=EXT, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    assert "# fail 0" in ran.stdout


def test_version_and_engine_in_step_with_the_python_package() -> None:
    package = json.loads((EXT / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == codeserver.project_version()
    assert package["engines"]["vscode"] == "^1.90.0"  # accepts code-server's VS Code 1.100
    commands = {c["command"] for c in package["contributes"]["commands"]}
    assert {"ferry.submitCurrentScript", "ferry.submitAgain", "ferry.cancelRun"} <= commands


def test_the_job_file_it_writes_is_one_ferry_reads(tmp_path: Path) -> None:
    """format.ts's jobFileText, run by node, read back by ferry.jobfile.load_job."""
    node = _node_ready()
    script = tmp_path / "emit.ts"
    script.write_text(
        f'import {{ jobFileText }} from "{EXT / "src" / "format"}";\n'
        "process.stdout.write(jobFileText({experiment: 'exp-1', script: 'train.py', "
        "arguments: ['--alpha', '0.5', 'two words', 'yes', '', 'a: b', '#x', \"q'\\\"\"], "
        "computeTarget: 'local'}));\n",
        encoding="utf-8",
    )
    bundled = tmp_path / "emit.js"
    esbuild = EXT / "node_modules" / ".bin" / "esbuild"
    subprocess.run(
        [str(esbuild), str(script), "--bundle", "--platform=node", f"--outfile={bundled}"],
        check=True,
        capture_output=True,
        cwd=codeserver.ROOT,
        timeout=60,
    )
    text = subprocess.run(
        [node, str(bundled)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    (tmp_path / "train.py").write_text("print('hi')\n", encoding="utf-8")
    job_file = tmp_path / "train.job.yml"
    job_file.write_text(text, encoding="utf-8")
    from ferry.jobfile import load_job

    job = load_job(job_file)
    assert job.experiment == "exp-1"
    assert job.config.arguments == ["--alpha", "0.5", "two words", "yes", "", "a: b", "#x", "q'\""]
    assert job.config.run_config.target == "local"
    assert Path(job.config.source_directory).resolve() == tmp_path.resolve()
