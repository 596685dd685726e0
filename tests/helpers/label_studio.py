"""A real Label Studio for tests: started by scripts/labelstudio.sh from .labelstudio-venv on a free loopback
port with SQLite in a temporary folder, once per session (30-45 s: the first start runs its migrations), and
always stopped."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import servers

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "labelstudio.sh"
VENV = ROOT / ".labelstudio-venv"
START_S = 300  # two busy cores: migrations and Django's imports


@dataclasses.dataclass(frozen=True)
class Server:
    url: str
    username: str
    password: str
    token: str
    log: Path

    def env(self) -> dict[str, str]:
        """What `nlu-mlflow inbox push|pull` reads."""
        return {"LABEL_STUDIO_URL": self.url, "LABEL_STUDIO_API_KEY": self.token}

    def session(self) -> requests.Session:
        """A browser-like session logged in with the user's password (the web page's cookies)."""
        session = requests.Session()
        page = session.get(f"{self.url}/user/login/", timeout=30)
        csrf = session.cookies.get("csrftoken")
        answer = session.post(
            f"{self.url}/user/login/",
            data={"email": self.username, "password": self.password, "csrfmiddlewaretoken": csrf},
            headers={"Referer": page.url},
            timeout=30,
        )
        answer.raise_for_status()
        return session


@contextlib.contextmanager
def label_studio_server(home: Path) -> Iterator[Server]:
    if not (VENV / "bin" / "label-studio").exists():
        raise RuntimeError(f"no Label Studio environment at {VENV}: run `make labelstudio-venv` first.")
    port = servers.free_port()
    user, password, token = "annotator@example.com", secrets.token_urlsafe(12), secrets.token_hex(20)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(
        LABEL_STUDIO_USERNAME=user,
        LABEL_STUDIO_PASSWORD=password,
        LABEL_STUDIO_USER_TOKEN=token,
        LABEL_STUDIO_BASE_DATA_DIR=str(home / "data"),
    )
    log = home / "label-studio.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["bash", str(SCRIPT), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        servers.wait_http(f"{url}/health", timeout=START_S, proc=proc)
        yield Server(url, user, password, token, log)
    finally:
        servers.stop(proc)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory) -> Iterator[Server]:
    """One Label Studio for the whole session; each test makes its own project."""
    with label_studio_server(tmp_path_factory.mktemp("label_studio")) as server:
        yield server
