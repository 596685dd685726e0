"""Screenshot a Label Studio task with its pre-annotation (docs/label-studio-task.png).

Starts Label Studio from .labelstudio-venv (scripts/labelstudio.sh) with a throw-away SQLite folder on a free
loopback port, puts two inbox items into a throw-away inbox, runs `nlu-mlflow inbox push --served` for the
pizza assistant (data/pizza-assistant), logs in as the user (the web page's session cookie, handed to
headless Chromium through the DevTools protocol), opens the first task in the labeling view, saves a PNG.

    .venv/bin/python scripts/screenshot_labelstudio.py [--out docs/label-studio-task.png]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from screenshot_compare import chromium, free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu_mlflow.live import inbox_store  # noqa: E402
from nlu_mlflow.live.label_studio import LabelStudio  # noqa: E402

ITEMS = [  # masked texts as `inbox collect` keeps them, with the parse the assistant served
    ("three medium pizzas for tomorrow evening", "purchase", 0.46,
     [{"start": 0, "end": 5, "entity": "quantity", "value": "three"},
      {"start": 6, "end": 12, "entity": "size", "value": "medium"}]),
    ("are you open on sundays", "nlu_fallback", 0.28, []),
]  # fmt: skip


def start_label_studio(home: Path) -> tuple[subprocess.Popen, str, dict]:
    port, token = free_port(), secrets.token_hex(20)
    env = {
        **os.environ, "LABEL_STUDIO_USERNAME": "annotator@example.com",
        "LABEL_STUDIO_PASSWORD": secrets.token_hex(8),
        "LABEL_STUDIO_USER_TOKEN": token, "LABEL_STUDIO_BASE_DATA_DIR": str(home / "data"),
    }  # fmt: skip
    with open(home / "label-studio.log", "wb") as log:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "labelstudio.sh"), "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return proc, url, env
        except requests.RequestException:
            time.sleep(1)
    raise SystemExit(f"Label Studio did not start; see {home / 'label-studio.log'}")


def push(home: Path, url: str, env: dict) -> tuple[int, int]:
    inbox = f"sqlite:///{home / 'inbox.db'}"
    store = inbox_store.InboxStore(inbox)
    with store.transaction() as connection:
        for i, (text, intent, confidence, entities) in enumerate(ITEMS):
            connection.execute(
                inbox_store.ITEMS.insert().values(
                    key=text, text=text, count=3 - i, first_seen=1.0, last_seen=2.0, intent=intent,
                    confidence=confidence, entities=json.dumps(entities), reasons='["fallback"]',
                    score=3.0 - i, state=inbox_store.QUEUED, model_version="4",
                )
            )  # fmt: skip
    client_env = {
        **os.environ,
        "LABEL_STUDIO_URL": url,
        "LABEL_STUDIO_API_KEY": env["LABEL_STUDIO_USER_TOKEN"],
    }
    command = [sys.executable, "-m", "nlu_mlflow.cli", "inbox", "push", "--served", "--inbox", inbox,
               "--project", str(ROOT / "data" / "pizza-assistant")]  # fmt: skip
    subprocess.run(command, check=True, env={**client_env, "PYTHONPATH": str(ROOT)})
    client = LabelStudio(url, env["LABEL_STUDIO_USER_TOKEN"])
    project = client.find_project("nlu-mlflow inbox")
    first = min(t["id"] for t in client.tasks(project.id))
    return project.id, first


def login_cookie(url: str, env: dict) -> str:
    session = requests.Session()
    page = session.get(f"{url}/user/login/", timeout=30)
    session.post(
        f"{url}/user/login/", timeout=30, headers={"Referer": page.url},
        data={"email": env["LABEL_STUDIO_USERNAME"], "password": env["LABEL_STUDIO_PASSWORD"],
              "csrfmiddlewaretoken": session.cookies.get("csrftoken")},
    )  # fmt: skip
    return session.cookies.get("sessionid")


async def shoot(page: str, url: str, cookie: str, target: str, out: Path) -> None:
    import websockets  # a dependency of Rasa

    async with websockets.connect(page, max_size=None) as ws:
        ids = iter(range(1, 1_000_000))

        async def call(method: str, **params) -> dict:
            number = next(ids)
            await ws.send(json.dumps({"id": number, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == number:
                    return message.get("result", {})

        await call(
            "Emulation.setDeviceMetricsOverride", width=1280, height=760, deviceScaleFactor=1, mobile=False
        )
        await call("Network.setCookie", name="sessionid", value=cookie, url=url)
        await call("Page.navigate", url=target)
        await asyncio.sleep(20)  # the labeling editor loads its bundle and the task
        shot = await call("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "label-studio-task.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ls-shot-") as work:
        home = Path(work)
        proc, url, env = start_label_studio(home)
        try:
            project, task = push(home, url, env)
            cookie = login_cookie(url, env)
            (home / "chromium").mkdir()
            with chromium(home / "chromium") as page:
                target = f"{url}/projects/{project}/data?task={task}"
                asyncio.run(shoot(page, url, cookie, target, args.out))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
