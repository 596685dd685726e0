"""Real server processes for tests, started on loopback and always stopped: `mlflow server`, PostgreSQL."""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = ROOT / "scripts" / "mlflow-server.sh"  # how every test starts `mlflow server`
SERVER_VENV = ROOT / ".server-venv"
AUTH_TEMPLATE = ROOT / "deploy" / "mlflow-server" / "basic_auth.ini"
ACCESS_SCRIPT = ROOT / "scripts" / "server_access.py"
LOOPBACK_HOSTS = "127.0.0.1:*,localhost:*"
# fixed so webhook secrets survive restarts; a Fernet key (32 url-safe base64 bytes), as MLflow demands
WEBHOOK_KEY = "bmx1LW1sZmxvdy10ZXN0LWZlcm5ldC1rZXktMzJieXQ="
SERVER_START_S = 240  # MLflow 3.18 imports itself twice per start: 20-40 s on two busy cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and every process it spawned (workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # workers may outlive the parent briefly
        os.killpg(proc.pid, signal.SIGKILL)


@dataclasses.dataclass(frozen=True)
class User:
    """A basic-auth user; ``env()`` is how a client logs in (MLflow reads only these two variables)."""

    name: str
    password: str

    @classmethod
    def new(cls, name: str) -> User:
        return cls(name, f"{name}-pw-{secrets.token_urlsafe(12)}")  # MLflow wants at least 12 characters

    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_USERNAME": self.name, "MLFLOW_TRACKING_PASSWORD": self.password}


@dataclasses.dataclass(frozen=True)
class BasicAuth:
    """`--app-name basic-auth` with the shipped ini (deploy/mlflow-server/basic_auth.ini), its users in the
    backend's database (SQLite: a file beside it), and a fresh admin password."""

    admin: User = dataclasses.field(default_factory=lambda: User.new("admin"))
    default_permission: str = "READ"

    def server_env(self, backend_uri: str, home: Path) -> dict[str, str]:
        config = configparser.ConfigParser()
        config.read(AUTH_TEMPLATE)
        users_db = backend_uri
        if backend_uri.startswith("sqlite:///"):
            users_db = f"sqlite:///{Path(backend_uri.removeprefix('sqlite:///')).with_suffix('.users.db')}"
        config["mlflow"].update(default_permission=self.default_permission, database_uri=users_db)
        config["mlflow"]["admin_username"] = self.admin.name
        ini = home / f"basic_auth-{secrets.token_hex(4)}.ini"
        with open(ini, "w") as out:
            config.write(out)
        return {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin.password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(24),
        }


@contextlib.contextmanager
def logged_in(user: User | None) -> Iterator[None]:
    """MLflow clients in this process act as ``user`` (None: without credentials) inside the block."""
    names = list(User("", "").env())
    previous = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    os.environ.update(user.env() if user else {})
    try:
        yield
    finally:
        for name, value in previous.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


@contextlib.contextmanager
def mlflow_server(
    backend_uri: str,
    artifacts: Path,
    log: Path,
    workers: int = 2,
    env: dict | None = None,
    auth: BasicAuth | None = None,
) -> Iterator[str]:
    """`mlflow server` from the server's own environment (MLflow 3.18), started by scripts/mlflow-server.sh
    on a free loopback port with served artifacts; basic-auth when ``auth`` is given. Yields its URL.

    Loopback webhook receivers need MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS and http in MLFLOW_WEBHOOK_ALLOWED_SCHEMES
    (servers from 3.10 on send only to public https addresses otherwise).
    """
    if not (SERVER_VENV / "bin" / "mlflow").exists():
        raise RuntimeError(f"no server environment at {SERVER_VENV}: run `make server-venv` first.")
    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    server_env.update(
        MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
        MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
        MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=WEBHOOK_KEY,
        NLU_MLFLOW_SERVER_AUTH="on" if auth else "off",
        **(auth.server_env(backend_uri, log.parent) if auth else {}),
        **(env or {}),
    )
    cmd = [
        "bash", str(SERVER_SCRIPT),
        "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", backend_uri,
        "--artifacts-destination", str(artifacts),
        "--allowed-hosts", LOOPBACK_HOSTS,
        "--workers", str(workers),
    ]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=server_env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", timeout=SERVER_START_S, proc=proc)
        yield url
    finally:
        stop(proc)


def apply_access(url: str, admin: User, access: dict, passwords: dict[str, str], home: Path) -> str:
    """scripts/server_access.py with the server's environment, as the admin: users and grants from
    ``access`` (the shape of deploy/mlflow-server/access.json); returns what it printed."""
    path = home / f"access-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(access))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=url, **admin.env(), **passwords)
    done = subprocess.run(
        [str(SERVER_VENV / "bin" / "python"), str(ACCESS_SCRIPT), "apply", str(path)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"server_access.py failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (installed by .ci/run / scripts/install-postgres.sh)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(root.glob("*/bin/initdb")) if root.exists() else []
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@contextlib.contextmanager
def postgres(base: Path | None = None, extra_databases: tuple[str, ...] = ()) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port; yields a SQLAlchemy URI of database `mlflow`.

    ``extra_databases`` are created beside it (same URI, another name: an Optuna storage must not share
    MLflow's database, both keep an `alembic_version` table). As root (CI, these machines) the cluster runs
    as the `postgres` system user, so ``base`` must be a folder that user can enter: by default a fresh one
    under /tmp, removed afterwards (pytest's tmp folders are private to root).
    """
    if base is None:
        base = Path(tempfile.mkdtemp(prefix="nlu-mlflow-pg-"))
        try:
            with postgres(base, extra_databases) as uri:
                yield uri
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL is not installed: run `bash scripts/install-postgres.sh` (Debian packages)."
        )
    data, port = base / "pgdata", free_port()
    base.mkdir(parents=True, exist_ok=True)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(base, "postgres")
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "pg.log"),
            "-w",
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        for database in ("mlflow", *extra_databases):
            subprocess.run(
                [
                    *as_user,
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    database,
                ],
                check=True,
                capture_output=True,
            )
        # the driver named: the server's SQLAlchemy 2.1 would take psycopg 3 for a bare postgresql://
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )


@dataclasses.dataclass(frozen=True)
class RasaApi:
    url: str
    token: str
    log: Path
    proc: subprocess.Popen | None = dataclasses.field(default=None, compare=False, repr=False)

    def status(self) -> dict:
        return requests.get(f"{self.url}/status", params={"token": self.token}, timeout=10).json()

    def loads_of(self, archive_name: str) -> int:
        """How often the server loaded an archive of this name (Rasa logs `Loading model <path>...`)."""
        return sum(
            1
            for line in self.log.read_text(errors="replace").splitlines()
            if "Loading model" in line and archive_name in line
        )

    def say(self, text: str, sender: str = "tester") -> list[str]:
        """The assistant's answers to ``text`` over the REST channel (needs ``rest_channel=True``)."""
        answer = requests.post(
            f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60
        )
        answer.raise_for_status()
        return [message.get("text", "") for message in answer.json()]

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until the server reports a loaded model (a server loading a model answers nothing meanwhile)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"rasa run exited with {self.proc.returncode}; see {self.log}")
            with contextlib.suppress(requests.RequestException, ValueError):
                if self.status().get("model_file"):
                    return
            time.sleep(0.5)
        raise TimeoutError(f"rasa run did not load its model within {timeout} s; see {self.log}")


@contextlib.contextmanager
def rasa_server(
    archive: Path,
    token: str,
    log: Path,
    timeout: float = 300.0,
    rest_channel: bool = False,
    wait: bool = True,
    endpoints: Path | None = None,
) -> Iterator[RasaApi]:
    """`rasa run --enable-api --auth-token TOKEN -m ARCHIVE` on a free loopback port (30-60 s to start).

    ``rest_channel``: with a credentials file naming `rest:`, so conversations reach
    `POST /webhooks/rest/webhook` (``RasaApi.say``). ``wait=False`` yields at once (call ``wait_ready``).
    ``endpoints``: an endpoints.yml (e.g. an SQL tracker store, where Rasa records every conversation).
    """
    port = free_port()
    cmd = [
        str(BIN / "rasa"), "run", "--enable-api", "--auth-token", token,
        "-m", str(archive), "-i", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    if rest_channel:
        credentials = log.parent / "credentials.yml"
        credentials.write_text("rest:\n")
        cmd += ["--credentials", str(credentials)]
    if endpoints is not None:
        cmd += ["--endpoints", str(endpoints)]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "LOG_LEVEL_LIBRARIES": "ERROR"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent, start_new_session=True
        )
    api = RasaApi(f"http://127.0.0.1:{port}", token, log, proc)
    try:
        if wait:
            api.wait_ready(timeout)
        yield api
    finally:
        stop(proc)


@dataclasses.dataclass
class Sink:
    """A local HTTP receiver standing in for Slack's incoming webhook: records every POSTed JSON body."""

    url: str
    messages: list[dict]

    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.messages]


@contextlib.contextmanager
def slack_sink(path: str = "/services/T000/B000/sink") -> Iterator[Sink]:
    messages: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == path:
                messages.append(json.loads(body))
            self.send_response(200 if self.path == path else 404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    with http_thread(Handler) as url:
        yield Sink(f"{url}{path}", messages)


@contextlib.contextmanager
def http_thread(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port from a thread; yields the base URL, stops on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def uvicorn_thread(app) -> Iterator[str]:
    """Serve an ASGI app in-process on a free loopback port (this environment has no httpx for TestClient)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.3):
    """Poll ``predicate`` until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout} s")
