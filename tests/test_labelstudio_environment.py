"""Label Studio's own environment and start script: a hashed lock apart from the client's (pydantic 2 there,
pydantic 1 here), and scripts/labelstudio.sh's refusals and command, checked in dry-run mode."""

from __future__ import annotations

import subprocess

from tests.helpers import ROOT
from tests.test_server_environment import pins

SCRIPT = ROOT / "scripts" / "labelstudio.sh"
TOKEN = "0123456789abcdef0123456789abcdef"


def test_the_lock_pins_label_studio_apart_from_the_client():
    lock, client = (
        pins(ROOT / "requirements" / "labelstudio-lock.txt"),
        pins(ROOT / "requirements" / "lock.txt"),
    )
    assert lock["label-studio"] == "1.23.2"
    assert int(lock["sentry-sdk"].split(".")[0]) < 3  # 3.0 stops Label Studio at start
    assert lock["pydantic"].startswith("2.") and client["pydantic"].startswith("1.")
    assert (
        "label-studio" not in client
        and "--hash=sha256:" in (ROOT / "requirements" / "labelstudio-lock.txt").read_text()
    )
    assert ".labelstudio-venv/" in (ROOT / ".gitignore").read_text().splitlines()


def start(tmp_path, *args: str, **env: str | None) -> subprocess.CompletedProcess:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / "bin" / "label-studio").write_text("#!/bin/sh\nexit 99\n")
    (venv / "bin" / "label-studio").chmod(0o755)
    full = {
        "PATH": "/usr/bin:/bin", "LABEL_STUDIO_VENV": str(venv), "LABEL_STUDIO_DRY_RUN": "1",
        "LABEL_STUDIO_USERNAME": "a@example.com", "LABEL_STUDIO_PASSWORD": "secret-pw",
        "LABEL_STUDIO_USER_TOKEN": TOKEN, "LABEL_STUDIO_BASE_DATA_DIR": str(tmp_path / "data"), **env,
    }  # fmt: skip
    full = {k: v for k, v in full.items() if v is not None}
    return subprocess.run(["bash", str(SCRIPT), *args], env=full, capture_output=True, text=True, timeout=60)


def test_it_binds_loopback_on_the_given_port_and_keeps_secrets_off_the_command_line(tmp_path):
    done = start(tmp_path, "--port", "8123")
    assert done.returncode == 0, done.stderr
    assert (
        "--internal-host 127.0.0.1" in done.stdout and "--port 8123" in done.stdout
    )  # not Label Studio's 0.0.0.0
    assert TOKEN not in done.stdout and "secret-pw" not in done.stdout
    assert "--port 8080" in start(tmp_path).stdout


def test_missing_credentials_or_environment_are_refused_with_the_fix(tmp_path):
    for env, expected in [
        ({"LABEL_STUDIO_USERNAME": None}, "LABEL_STUDIO_USERNAME is not set"),
        ({"LABEL_STUDIO_PASSWORD": None}, "LABEL_STUDIO_PASSWORD is not set"),
        ({"LABEL_STUDIO_USER_TOKEN": "short"}, "LABEL_STUDIO_USER_TOKEN is not set or shorter than 20"),
        ({"LABEL_STUDIO_USER_TOKEN": None}, "LABEL_STUDIO_USER_TOKEN is not set or shorter than 20"),
        ({"LABEL_STUDIO_VENV": str(tmp_path / "none")}, "run `make labelstudio-venv` first"),
    ]:
        done = start(tmp_path, **env)
        assert done.returncode == 2 and expected in done.stderr, (env, done.stderr)
