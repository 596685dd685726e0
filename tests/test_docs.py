"""Docs are tests: every `nlu-mlflow` command in a fenced block of README.md and docs/*.md uses only
subcommands and options the CLI has (read from the Typer app itself), every relative link points at a file
(and heading) that exists, and the README's quick start (`make demo`, epochs capped) runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main

from nlu_mlflow.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
SHELL_BREAKS = {"|", "||", "&&", ";", ">", ">>", "2>", "&"}


def commands(text: str) -> list[list[str]]:
    """The argument lists after each `nlu-mlflow` of the fenced blocks, up to the end of its shell command."""
    found = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            if "nlu-mlflow" not in line:
                continue
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:  # a diagram or prose, not a shell line
                continue
            found += invocations(tokens)
    return found


def invocations(tokens: list[str]) -> list[list[str]]:
    """`nlu-mlflow` in command position (after variable assignments, `&&`, `sudo`...; a systemd
    `ExecStart=`), not a folder, namespace or experiment that happens to share the name."""
    found, start = [], True
    for i, token in enumerate(tokens):
        if token in SHELL_BREAKS:
            start = True
            continue
        program = token.removeprefix("ExecStart=")  # a systemd unit's command line
        if start and program == token and re.match(r"^\w+=", token):
            continue  # VAR=value before the program
        if start and program.rsplit("/", 1)[-1] == "nlu-mlflow":
            rest = tokens[i + 1 :]
            found.append(rest[: next((j for j, t in enumerate(rest) if t in SHELL_BREAKS), len(rest))])
        start = token in {"sudo", "exec", "time", "nohup"}
    return found


def check(argv: list[str]) -> str | None:
    """None when the CLI has this subcommand and these options, else what is wrong."""
    command = typer.main.get_command(app)
    path = ["nlu-mlflow"]
    args = list(argv)
    while hasattr(command, "commands"):  # a group: the next word names a subcommand
        if not args or args[0] not in command.commands:
            return f"{' '.join(path)}: no subcommand {args[0] if args else '(none)'!r}"
        path.append(args[0])
        command = command.commands[args.pop(0)]
    options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    unknown = [a.split("=", 1)[0] for a in args if a.startswith("-") and a.split("=", 1)[0] not in options]
    return f"{' '.join(path)}: no option {', '.join(unknown)}" if unknown else None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_the_docs_show_nlu_mlflow_commands():
    assert sum(len(commands(d.read_text())) for d in DOCS) > 10, "no commands found: the parser is wrong"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_documented_command_exists_with_its_options(doc):
    wrong = [f"{' '.join(argv)} -> {err}" for argv in commands(doc.read_text()) if (err := check(argv))]
    assert wrong == [], f"{doc.name} shows commands the CLI does not have:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "argv, wrong",
    [
        (["run", "--workflow", "nlu-mlflow.yml", "--epochs", "1"], None),
        (["webhooks", "serve", "--work-dir", "/srv"], None),
        (["run", "--epoch", "1"], "nlu-mlflow run: no option --epoch"),
        (["promote", "7", "--forced"], "nlu-mlflow promote: no option --forced"),
        (["deploy"], "nlu-mlflow: no subcommand 'deploy'"),
        (["webhooks", "list"], "nlu-mlflow webhooks: no subcommand 'list'"),
    ],
)
def test_the_command_check_tells_a_wrong_option_from_a_right_one(argv, wrong):
    assert check(argv) == wrong


def test_commands_are_read_up_to_the_end_of_their_shell_command():
    text = (
        "```bash\nX=1 .venv/bin/nlu-mlflow run --data a \\\n  --epochs 2 | tee log  # --not-an-option\n```\n"
    )
    assert commands(text) == [["run", "--data", "a", "--epochs", "2"]]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_point_at_files_and_headings_that_exist(doc):
    broken = []
    for target in LINK.findall(FENCE.sub("", doc.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file) if file else doc
        if not path.exists():
            broken.append(
                f"{target}: no file {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
            )
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.name}")
    assert broken == [], f"{doc.name} has broken links:\n" + "\n".join(broken)


def test_the_readme_stays_a_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


@pytest.mark.slow
def test_make_demo_runs_with_one_epoch(tmp_path):
    """The quick start as a new user types it, in a copy of what the demo reads, so nothing lands in the repo."""
    for name in ("nlu-mlflow.yml", "data", "configs", "Makefile", "MLproject"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        elif source.exists():
            shutil.copy(source, tmp_path / name)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["make", "-o", ".venv/.installed", "demo", "DEMO_ARGS=--epochs 1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, (
        f"make demo exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )
    assert re.search(r"^(promoted|kept) ", done.stderr + done.stdout, re.M), done.stderr[-2000:]
    assert json.loads((tmp_path / "last-run.json").read_text())["decision"] in {"promoted", "kept"}
    assert (tmp_path / "mlruns.db").is_file()
    assert "mlflow ui" in done.stdout
