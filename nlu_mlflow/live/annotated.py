"""Annotated live messages on disk: one Rasa NLU YAML file per pull, written whole or not at all (beside, then
``os.replace``), or committed on a git branch without touching the checked-out branch or the working tree.

Each file starts with a header naming the inbox annotations it holds (``# annotations: 4,5,9``): after a
crash between writing a file and recording it in the inbox, the next pull reads the headers and records
those annotations as written instead of writing them again. ``nlu-mlflow run`` knows live data by the same
header (``is_pull_file``).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from nlu_mlflow.errors import InputError

MARKER = "# nlu-mlflow inbox pull"
_IDS = re.compile(r"^# annotations: ([\d,]+)\s*$", re.M)
HEADER_LINES = 6
ZERO = "0" * 40


def header(when: str, source: str, annotation_ids: Iterable[int]) -> str:
    ids = ",".join(str(i) for i in annotation_ids)
    return (
        f"{MARKER} {when}: live traffic, annotated in {source} (texts masked; edit a placeholder such as "
        f"[EMAIL] into a realistic value before training if you like)\n# annotations: {ids}\n"
    )


def annotation_ids(text: str) -> list[int]:
    head = "".join(text.splitlines(keepends=True)[:HEADER_LINES])
    found = _IDS.search(head) if head.startswith(MARKER) else None
    return [int(i) for i in found.group(1).split(",") if i] if found else []


def is_pull_file(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().startswith(MARKER)
    except (OSError, UnicodeDecodeError):
        return False


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path


def recorded(folder: Path, branch: str | None = None) -> dict[int, str]:
    """annotation id -> the pull file that holds it, in ``folder`` (and on ``branch``, when given)."""
    found = {}
    for path in sorted(folder.glob("*.yml")) if folder.is_dir() else []:
        found.update({i: str(path) for i in annotation_ids(path.read_text(encoding="utf-8"))})
    if branch is not None:
        repo = _toplevel(folder)
        ref = f"refs/heads/{branch}"
        if _git(repo, "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0:
            where = _relative(repo, folder)
            names = _git(repo, "ls-tree", "--name-only", ref, f"{where}/").stdout.split()
            for name in names:
                blob = _git(repo, "show", f"{ref}:{name}").stdout
                found.update({i: f"{branch}:{name}" for i in annotation_ids(blob)})
    return found


def commit_on_branch(path: Path, text: str, branch: str, message: str) -> str:
    """Commit ``text`` as ``path`` on ``branch`` (created from HEAD when new) with git plumbing and a
    temporary index: the checked-out branch, the index and the working tree stay as they were. Returns
    the commit id."""
    repo = _toplevel(path.parent)
    current = _git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout.strip()
    if current == branch:
        raise InputError(
            f"--git-branch {branch}: that branch is checked out in {repo}; name another branch (the pull "
            "commits there for review and leaves the checked-out one alone)."
        )
    ref = f"refs/heads/{branch}"
    old = _git(repo, "rev-parse", "--verify", "--quiet", ref, check=False).stdout.strip()
    parent = old or _git(repo, "rev-parse", "--verify", "HEAD").stdout.strip()
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-index-") as work:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(work) / "index")}
        _git(repo, "read-tree", parent, env=env)
        blob = _git(repo, "hash-object", "-w", "--stdin", input=text).stdout.strip()
        _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{_relative(repo, path)}", env=env)
        tree = _git(repo, "write-tree", env=env).stdout.strip()
    commit = _git(repo, "commit-tree", tree, "-p", parent, "-m", message, env=_author()).stdout.strip()
    _git(repo, "update-ref", ref, commit, old or ZERO)  # fails if someone moved the branch meanwhile
    return commit


def _author() -> dict[str, str]:
    env = dict(os.environ)
    for kind in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{kind}_NAME", "nlu-mlflow inbox")
        env.setdefault(f"GIT_{kind}_EMAIL", "nlu-mlflow@localhost")
    return env


def _toplevel(folder: Path) -> Path:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    done = _git(probe, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0:
        raise InputError(
            f"{folder}: not inside a git repository; --git-branch commits into the project's repository "
            "(run `git init` there, or leave --git-branch out to write the file only)."
        )
    return Path(done.stdout.strip())


def _relative(repo: Path, path: Path) -> str:
    return Path(os.path.relpath(path.resolve(), repo.resolve())).as_posix()


def _git(repo: Path, *args: str, env: dict | None = None, input: str | None = None, check: bool = True):
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, input=input
    )
    if check and done.returncode != 0:
        raise InputError(f"git {args[0]} in {repo} failed: {done.stderr.strip()[:300]}; fix the repository.")
    return done
