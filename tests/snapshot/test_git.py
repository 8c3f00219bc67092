"""capture_git against real temporary repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from snapshot_helpers import write

from ferry.errors import ConfigError
from ferry.snapshot import GitInfo, capture_git
from ferry.snapshot.git import scrub_url

pytestmark = pytest.mark.usefixtures("git_env")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed repository on branch 'main' with a remote, source folder 'src dir/'."""
    root = tmp_path / "repo with space"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root / "src dir/train.py", "print('hi')\n")
    write(root / 'src dir/ünï "q".txt', "awkward\n")
    write(root / "README", "top\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    git(root, "remote", "add", "origin", "https://github.com/org/proj.git")
    return root


def test_clean_repository(repo: Path) -> None:
    info = capture_git(repo / "src dir")
    assert info is not None
    commit = git(repo, "rev-parse", "HEAD")
    assert info.properties == {
        "azureml.git.repository_uri": "https://github.com/org/proj.git",
        "mlflow.source.git.repoURL": "https://github.com/org/proj.git",
        "ferry.git.repository_uri": "https://github.com/org/proj.git",
        "azureml.git.branch": "main",
        "mlflow.source.git.branch": "main",
        "ferry.git.branch": "main",
        "azureml.git.commit": commit,
        "mlflow.source.git.commit": commit,
        "ferry.git.commit": commit,
        "azureml.git.dirty": "False",
        "ferry.git.dirty": "False",
    }
    assert info.diff is None and info.untracked == ()


def test_dirty_tree_keeps_the_diff_and_untracked_files(repo: Path) -> None:
    write(repo / "src dir/train.py", "print('changed')\n")
    write(repo / "src dir/new\nline.py", "untracked\n")
    write(repo / "src dir/data/new.csv", "1,2\n")
    info = capture_git(repo / "src dir")
    assert info is not None and info.dirty is True
    assert info.properties["azureml.git.dirty"] == "True"
    assert info.diff is not None
    assert "-print('hi')\n+print('changed')" in info.diff
    assert set(info.untracked) == {"src dir/new\nline.py", "src dir/data/new.csv"}
    assert GitInfo.from_dict(info.to_dict()) == info


def test_dirtiness_is_scoped_to_the_source_folder(repo: Path) -> None:
    write(repo / "README", "changed outside the source folder\n")
    write(repo / "elsewhere.txt", "untracked outside\n")
    info = capture_git(repo / "src dir")
    assert info is not None and info.dirty is False and info.diff is None
    top = capture_git(repo)
    assert top is not None and top.dirty is True and "elsewhere.txt" in top.untracked


def test_renamed_and_staged_files_count_as_dirty(repo: Path) -> None:
    git(repo, "mv", "src dir/train.py", "src dir/fit.py")
    info = capture_git(repo / "src dir")
    assert info is not None and info.dirty and info.untracked == ()
    assert info.diff is not None and "fit.py" in info.diff


def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    info = capture_git(repo / "src dir")
    assert info is not None and info.branch is None and info.commit is not None
    assert "azureml.git.branch" not in info.properties
    assert "mlflow.source.git.branch" not in info.properties


def test_no_remote_means_no_repository_uri(repo: Path) -> None:
    git(repo, "remote", "remove", "origin")
    info = capture_git(repo / "src dir")
    assert info is not None and info.repository_uri is None
    assert not any("repo" in key.lower() for key in info.properties)


def test_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "trunk")
    write(tmp_path / "a.py", "x\n")
    info = capture_git(tmp_path)
    assert info is not None
    assert info.commit is None and info.branch == "trunk" and info.dirty is True
    assert info.untracked == ("a.py",) and info.diff is None


def test_not_a_repository_is_none(tmp_path: Path) -> None:
    write(tmp_path / "plain/a.py", "x\n")
    assert capture_git(tmp_path / "plain", env={}) is None


def test_git_missing_is_none(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no git here"))
    assert capture_git(repo / "src dir", env={}) is None


def test_environment_overrides_win(repo: Path) -> None:
    env = {"FERRY_GIT_BRANCH": "release", "AZUREML_GIT_COMMIT": "abc123",
           "AZUREML_GIT_BRANCH": "ignored: FERRY_ wins", "FERRY_GIT_DIRTY": "true",
           "AZUREML_GIT_BUILD_ID": "42"}  # fmt: skip
    info = capture_git(repo / "src dir", env=env)
    assert info is not None
    props = info.properties
    assert props["azureml.git.branch"] == props["mlflow.source.git.branch"] == "release"
    assert props["azureml.git.commit"] == props["ferry.git.commit"] == "abc123"
    assert props["azureml.git.dirty"] == "True"
    assert props["azureml.git.build_id"] == "42"
    assert props["azureml.git.repository_uri"] == "https://github.com/org/proj.git"


def test_overrides_alone_outside_a_repository(tmp_path: Path) -> None:
    info = capture_git(tmp_path, env={"FERRY_GIT_REPOSITORY_URI": "https://x/y.git"})
    assert info is not None and info.properties == {
        "azureml.git.repository_uri": "https://x/y.git",
        "mlflow.source.git.repoURL": "https://x/y.git",
        "ferry.git.repository_uri": "https://x/y.git",
    }


def test_a_bad_dirty_override_is_a_config_error(repo: Path) -> None:
    with pytest.raises(ConfigError, match="FERRY_GIT_DIRTY"):
        capture_git(repo, env={"FERRY_GIT_DIRTY": "maybe"})


def test_credentials_are_removed_from_the_remote_url(repo: Path) -> None:
    git(repo, "remote", "set-url", "origin", "https://user:s3cret@github.com/org/proj.git")
    info = capture_git(repo / "src dir")
    assert info is not None and info.repository_uri == "https://github.com/org/proj.git"
    assert "s3cret" not in str(info.properties)


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://ghp_token@github.com/o/r.git", "https://github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("ssh://git:pw@host/r.git", "ssh://git@host/r.git"),
        ("ssh://git@host:22/r.git", "ssh://git@host:22/r.git"),
        ("/local/path/repo", "/local/path/repo"),
    ],
)
def test_scrub_url(url: str, clean: str) -> None:
    assert scrub_url(url) == clean
