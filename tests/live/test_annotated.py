"""Pull files on disk (live/annotated.py): written whole or not at all, their headers found again after a
crash, and a commit on a git branch that leaves the checked-out branch, the index and the working tree alone."""

from __future__ import annotations

import os
import subprocess

import pytest

from nlu_mlflow.errors import InputError
from nlu_mlflow.live import annotated


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def repo(tmp_path):
    repo = tmp_path / "assistant"
    (repo / "data" / "nlu").mkdir(parents=True)
    (repo / "data" / "nlu" / "nlu.yml").write_text('version: "3.1"\nnlu: []\n')
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "start")
    return repo


def test_the_header_names_the_annotations_and_marks_a_pull_file(tmp_path):
    path = annotated.write_atomically(
        tmp_path / "a" / "live.yml", annotated.header("now", "Label Studio", [3, 5]) + "nlu: []\n"
    )
    assert annotated.annotation_ids(path.read_text()) == [3, 5]
    assert annotated.is_pull_file(path)
    other = tmp_path / "nlu.yml"
    other.write_text("# annotations: 1\nnlu: []\n")  # no marker: a team's own file
    assert not annotated.is_pull_file(other) and annotated.annotation_ids(other.read_text()) == []
    assert annotated.recorded(tmp_path / "a") == {3: str(path), 5: str(path)}


def test_a_failed_write_leaves_the_old_file_and_nothing_beside_it(tmp_path, monkeypatch):
    path = tmp_path / "live.yml"
    path.write_text("old\n")

    def broken(src, dst):  # noqa: ARG001
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        annotated.write_atomically(path, "new\n")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["live.yml"]


def test_a_commit_on_a_branch_leaves_the_checkout_alone(repo):
    (repo / "data" / "nlu" / "nlu.yml").write_text("edited, not staged\n")
    head, status = git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain")
    path = repo / "data" / "nlu" / "annotated" / "live-1.yml"
    text = annotated.header("now", "Label Studio", [7]) + "nlu: []\n"
    commit = annotated.commit_on_branch(path, text, "annotations", "two messages")
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == status
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main" and not path.exists()
    assert git(repo, "rev-parse", "annotations").strip() == commit
    assert git(repo, "show", "annotations:data/nlu/annotated/live-1.yml") == text
    assert (
        git(repo, "show", "annotations:data/nlu/nlu.yml") == 'version: "3.1"\nnlu: []\n'
    )  # from HEAD, not the tree
    assert git(repo, "log", "--format=%s", "annotations").splitlines() == ["two messages", "start"]
    second = annotated.commit_on_branch(path.with_name("live-2.yml"), "x\n", "annotations", "more")
    assert git(repo, "rev-parse", f"{second}^").strip() == commit  # the branch grows
    assert annotated.recorded(path.parent, "annotations") == {7: "annotations:data/nlu/annotated/live-1.yml"}


def test_the_checked_out_branch_and_a_folder_outside_git_are_refused(repo, tmp_path):
    with pytest.raises(InputError, match="--git-branch main: that branch is checked out"):
        annotated.commit_on_branch(repo / "data" / "x.yml", "x", "main", "m")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(InputError, match="not inside a git repository"):
        annotated.commit_on_branch(outside / "x.yml", "x", "b", "m")
