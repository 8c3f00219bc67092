"""Ignore rules: precedence of files, nesting, negation, defaults — pure and through a walk."""

from __future__ import annotations

from pathlib import Path

import pytest
from snapshot_helpers import AWKWARD_NAMES, write

from ferry.snapshot.ignore import DEFAULT_EXCLUDES, SECRET_EXCLUDES, RuleSet, default_rules
from ferry.snapshot.walk import walk


def kept(root: Path) -> set[str]:
    tree = walk(root)
    return {f[0] for f in tree.files} | {rel for rel, _ in tree.links}


# --- pure rule sets -----------------------------------------------------------------------


def test_last_matching_line_wins_within_one_file() -> None:
    rules = RuleSet.from_lines(["*.log", "!keep.log", "keep.log"], source=".gitignore")
    assert rules.match("a.log").exclude  # type: ignore[union-attr]
    assert rules.match("keep.log").exclude  # type: ignore[union-attr]
    rules = RuleSet.from_lines(["*.log", "!keep.log"], source=".gitignore")
    assert rules.match("keep.log").exclude is False  # type: ignore[union-attr]
    assert rules.match("keep.txt") is None


def test_folder_only_patterns_do_not_match_files() -> None:
    rules = RuleSet.from_lines(["build/"], source="x")
    assert rules.match("build/") is not None
    assert rules.match("build") is None
    assert rules.match("sub/build/") is not None


def test_a_rule_matching_only_a_parent_folder_does_not_decide_for_the_child() -> None:
    rules = RuleSet.from_lines(["outputs/"], source="x")
    assert rules.match("outputs/model.pt") is None


def test_patterns_match_names_with_newlines_and_unicode() -> None:
    rules = RuleSet.from_lines(["*.pyc", "ünï*"], source="x")
    assert rules.match("new\nline dir/x.pyc") is not None
    assert rules.match("x.pyc\n") is None  # a name ending in a newline is not "*.pyc"
    assert rules.match("a/ünïcode.txt") is not None


def test_comments_blank_lines_and_escapes() -> None:
    rules = RuleSet.from_lines(["# comment", "", r"\#hash", r"\!bang"], source="x")
    assert len(rules.rules) == 2
    assert rules.match("#hash") is not None
    assert rules.match("!bang") is not None
    assert rules.match("comment") is None


@pytest.mark.parametrize(
    "path",
    [".git/", "outputs/", "logs/", "__pycache__/", "a/__pycache__/", "x.pyc", "a/b/c.pyc",
     ".ipynb_checkpoints/", ".venv/", ".ferry/", "sub/outputs/"],
)  # fmt: skip
def test_defaults_exclude(path: str) -> None:
    rule = default_rules().match(path)
    assert rule is not None and rule.exclude and rule.source == "default"


@pytest.mark.parametrize("path", ["outputs", "logs.txt", "train.py", "git/", "src/"])
def test_defaults_keep(path: str) -> None:
    assert default_rules().match(path) is None


# --- through the walk -------------------------------------------------------------------


def test_defaults_apply_without_any_ignore_file(tmp_path: Path) -> None:
    for rel in ["train.py", ".git/HEAD", "outputs/m.pt", "logs/l.txt", "pkg/__pycache__/a.pyc",
                "pkg/mod.pyc", ".ipynb_checkpoints/x", ".venv/bin/python", ".ferry/c.json",
                "pkg/outputs/deep.txt"]:  # fmt: skip
        write(tmp_path / rel, "x")
    assert kept(tmp_path) == {"train.py"}
    assert DEFAULT_EXCLUDES[:8] == (
        ".git/", "outputs/", "logs/", "__pycache__/", "*.pyc", ".ipynb_checkpoints/", ".venv/",
        ".ferry/",
    )  # fmt: skip
    assert DEFAULT_EXCLUDES[8:] == SECRET_EXCLUDES


def test_a_user_can_reinclude_a_default_with_negation(tmp_path: Path) -> None:
    write(tmp_path / "outputs/keep.txt", "x")
    write(tmp_path / "logs/l.txt", "x")
    write(tmp_path / ".gitignore", "!outputs/\n")
    assert kept(tmp_path) == {".gitignore", "outputs/keep.txt"}


def test_amlignore_wins_over_gitignore_and_ferryignore_over_both(tmp_path: Path) -> None:
    for name in ["a.txt", "b.txt", "c.txt"]:
        write(tmp_path / name, "x")
    write(tmp_path / ".gitignore", "a.txt\n")
    assert kept(tmp_path) == {".gitignore", "b.txt", "c.txt"}
    write(tmp_path / ".amlignore", "b.txt\n")  # .gitignore is now not read at all
    assert kept(tmp_path) == {".gitignore", ".amlignore", "a.txt", "c.txt"}
    write(tmp_path / ".ferryignore", "c.txt\n")
    assert kept(tmp_path) == {".gitignore", ".amlignore", ".ferryignore", "a.txt", "b.txt"}


def test_precedence_is_per_folder(tmp_path: Path) -> None:
    write(tmp_path / ".ferryignore", "*.csv\n")
    write(tmp_path / "sub/.amlignore", "*.json\n")
    write(tmp_path / "sub/.gitignore", "*.txt\n")  # shadowed by sub/.amlignore
    for rel in ["a.csv", "a.json", "a.txt", "sub/b.csv", "sub/b.json", "sub/b.txt"]:
        write(tmp_path / rel, "x")
    assert kept(tmp_path) == {
        ".ferryignore", "a.json", "a.txt", "sub/.amlignore", "sub/.gitignore", "sub/b.txt",
    }  # fmt: skip


def test_nested_files_are_relative_to_their_folder(tmp_path: Path) -> None:
    write(tmp_path / "sub/.gitignore", "/only-here.txt\ndata/\n")
    for rel in ["only-here.txt", "sub/only-here.txt", "sub/deeper/only-here.txt",
                "data/keep.txt", "sub/data/drop.txt", "sub/deeper/data/drop.txt"]:  # fmt: skip
        write(tmp_path / rel, "x")
    assert kept(tmp_path) == {
        "sub/.gitignore", "only-here.txt", "sub/deeper/only-here.txt", "data/keep.txt",
    }  # fmt: skip


def test_a_deeper_file_overrides_a_shallower_one(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "*.log\n")
    write(tmp_path / "sub/.gitignore", "!important.log\n")
    for rel in ["a.log", "important.log", "sub/b.log", "sub/important.log"]:
        write(tmp_path / rel, "x")
    assert kept(tmp_path) == {".gitignore", "sub/.gitignore", "sub/important.log"}


def test_nothing_under_an_excluded_folder_can_be_reincluded(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "data/\n!data/keep.txt\n")
    write(tmp_path / "data/.gitignore", "!keep.txt\n")  # not even read: data/ is not entered
    write(tmp_path / "data/keep.txt", "x")
    assert kept(tmp_path) == {".gitignore"}


def test_reincluding_a_folder_does_not_override_file_rules_of_a_weaker_layer(
    tmp_path: Path,
) -> None:
    write(tmp_path / ".gitignore", "*.tmp\n")
    write(tmp_path / "sub/.gitignore", "!outputs/\n")
    write(tmp_path / "sub/outputs/a.tmp", "x")
    write(tmp_path / "sub/outputs/a.txt", "x")
    assert kept(tmp_path) == {".gitignore", "sub/.gitignore", "sub/outputs/a.txt"}


def test_rules_match_awkward_names(tmp_path: Path) -> None:
    for name in AWKWARD_NAMES:
        write(tmp_path / "d" / name, "x")
    write(tmp_path / ".gitignore", "new?line.txt\nwith space.txt\n\\!bang.txt\n*日本語*\n")
    names = {p.removeprefix("d/") for p in kept(tmp_path)} - {".gitignore"}
    assert names == set(AWKWARD_NAMES) - {
        "new\nline.txt", "with space.txt", "!bang.txt", "ünïcödé-日本語.py",
    }  # fmt: skip


def test_ignore_file_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside.rules", "a.txt\n")
    src = tmp_path / "src"
    write(src / "a.txt", "x")
    (src / ".gitignore").symlink_to(outside)
    tree = walk(src)
    assert {f[0] for f in tree.files} == {"a.txt"}
    assert any(".gitignore" in w and "not a regular file" in w for w in tree.warnings)


def test_the_combined_regex_matches_exactly_when_some_rule_does() -> None:
    """The one-regex prefilter must never skip a rule (nor invent a match)."""
    user = RuleSet.from_lines(
        ["/anchored.txt", "deep/er/*.csv", "*.log", "build/", "!keep.log", "a?c", "**/x/**"],
        source=".ferryignore",
    )
    paths = [
        "anchored.txt", "sub/anchored.txt", "deep/er/a.csv", "x/deep/er/a.csv", "q.log",
        "a/b/q.log", "build/", "a/build/", "build", "keep.log", "abc", "d/abc", "x/y", "a/x/b",
        ".env", "s/.env.local", "k.pem", "id_rsa.pub", ".git/", "m.py", "outputs", "new\nline",
    ]  # fmt: skip
    for rules in (default_rules(), user):
        assert rules.any_rule is not None
        for path in paths:
            expected = any(rule.regex.match(path) for rule in rules.rules)
            assert bool(rules.any_rule.match(path)) == expected, (rules.source, path)
