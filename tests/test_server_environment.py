"""The tracking server's own environment (docs/shared-server.md): its lock, the start script's refusals, the
documented commands, and an upgrade of a store written by the 3.5.1 client with `mlflow db upgrade`."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest

from tests.helpers import ROOT, servers

REQUIREMENTS = ROOT / "requirements"
DOCS = ROOT / "docs" / "shared-server.md"
GOOD = [
    "--backend-store-uri", "postgresql+psycopg2://mlflow@db:5432/mlflow",
    "--artifacts-destination", "/srv/mlflow/artifacts", "--allowed-hosts", "mlflow.example.com",
]  # fmt: skip


def pins(lock: Path) -> dict[str, str]:
    """name -> version of a lock, with or without hashes."""
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", lock.read_text(), flags=re.M))


def test_the_server_lock_pins_the_current_mlflow_apart_from_the_client():
    server, client = pins(REQUIREMENTS / "server-lock.txt"), pins(REQUIREMENTS / "lock.txt")
    assert tuple(int(x) for x in server["mlflow"].split(".")[:2]) >= (3, 18)
    assert server["mlflow-skinny"] == server["mlflow"]
    assert {"flask-wtf", "psycopg2-binary", "sqlalchemy"} <= set(server)  # basic-auth, MLflow's driver
    assert "psycopg" not in server and "mlflow-tracing" not in server  # see requirements/server.in
    assert client["mlflow"] == "3.5.1"  # the client stays where Rasa 3.6 can follow
    assert "--hash=sha256:" in (REQUIREMENTS / "server-lock.txt").read_text()


def start_script(tmp_path: Path, args: list[str], **env: str | None) -> subprocess.CompletedProcess:
    """scripts/mlflow-server.sh in dry-run mode with a stand-in server environment and every setting given,
    except where ``env`` overrides (None: unset)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / "bin" / "mlflow").write_text("#!/bin/sh\nexit 99\n")
    (venv / "bin" / "mlflow").chmod(0o755)
    full = {
        "PATH": "/usr/bin:/bin",
        "NLU_MLFLOW_SERVER_VENV": str(venv),
        "NLU_MLFLOW_SERVER_DRY_RUN": "1",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": servers.WEBHOOK_KEY,
        "MLFLOW_AUTH_CONFIG_PATH": str(servers.AUTH_TEMPLATE),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-key-for-the-test",
        **env,
    }
    full = {k: v for k, v in full.items() if v is not None}
    return subprocess.run(
        ["bash", str(servers.SERVER_SCRIPT), *args], env=full, capture_output=True, text=True, timeout=60
    )


def test_the_script_starts_basic_auth_with_served_artifacts(tmp_path):
    done = start_script(tmp_path, GOOD)
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout)
    assert argv[1:5] == ["server", "--serve-artifacts", "--app-name", "basic-auth"]
    assert argv[5:] == GOOD


def test_the_script_off_switch_leaves_basic_auth_out(tmp_path):
    done = start_script(tmp_path, GOOD, NLU_MLFLOW_SERVER_AUTH="off", MLFLOW_AUTH_CONFIG_PATH=None)
    assert done.returncode == 0, done.stderr
    assert "--app-name" not in done.stdout


def without(option: str) -> list[str]:
    i = GOOD.index(option)
    return GOOD[:i] + GOOD[i + 2 :]


BARE = ["--backend-store-uri", "postgresql://mlflow@db:5432/mlflow", *without("--backend-store-uri")]
BARE_INI = "[mlflow]\ndatabase_uri = postgresql://mlflow@db/mlflow_auth\n"


@pytest.mark.parametrize(
    "args, env, ini, says",
    [
        (without("--allowed-hosts"), {}, None, "--allowed-hosts is missing: list every host name"),
        (without("--artifacts-destination"), {}, None, "--artifacts-destination is missing"),
        (without("--backend-store-uri"), {}, None, "--backend-store-uri is missing"),
        (["--backend-store-uri", "/srv/mlruns", *without("--backend-store-uri")], {}, None, "use a database"),
        (BARE, {}, None, "name the driver, postgresql+psycopg2://"),
        (GOOD, {}, BARE_INI, "database_uri postgresql://...: name the driver"),
        (GOOD, {"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": None}, None, "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY is not set"),
        (GOOD, {"MLFLOW_AUTH_CONFIG_PATH": None}, None, "MLFLOW_AUTH_CONFIG_PATH is not set"),
        (GOOD, {"MLFLOW_FLASK_SERVER_SECRET_KEY": None}, None, "MLFLOW_FLASK_SERVER_SECRET_KEY is not set"),
        (GOOD, {"NLU_MLFLOW_SERVER_VENV": "/nonexistent"}, None, "run `make server-venv` first"),
    ],
    ids=["hosts", "artifacts", "backend", "file-store", "bare-postgres", "bare-auth-db", "webhook-key",
         "auth-config", "csrf-key", "no-venv"],
)  # fmt: skip
def test_the_script_refuses_incomplete_settings_in_one_sentence(tmp_path, args, env, ini, says):
    if ini is not None:
        (tmp_path / "auth.ini").write_text(ini)
        env = {**env, "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth.ini")}
    done = start_script(tmp_path, args, **env)
    assert done.returncode == 2
    assert done.stdout == ""  # nothing started
    [line] = done.stderr.splitlines()
    assert line.startswith("mlflow-server.sh: ") and says in line, line


def documented_script_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", DOCS.read_text(), flags=re.S)
    lines = "\n".join(block.replace("\\\n", " ") for block in blocks).splitlines()
    return [
        shlex.split(line, comments=True)[1:] for line in lines if line.startswith("scripts/mlflow-server.sh")
    ]


def test_the_documented_server_commands_pass_the_script_and_parse_with_mlflow_3_18(tmp_path):
    commands = documented_script_commands()
    assert commands, f"{DOCS} shows no scripts/mlflow-server.sh command"
    dry = [start_script(tmp_path, args, NLU_MLFLOW_SERVER_VENV=str(servers.SERVER_VENV)) for args in commands]
    assert [d.returncode for d in dry] == [0] * len(dry), [d.stderr for d in dry]
    argvs = [shlex.split(d.stdout)[2:] for d in dry]  # after ".../mlflow server"
    parse = (
        "import json, sys\nfrom mlflow.cli import cli\n"
        "params = [cli.commands['server'].make_context('server', a).params for a in json.load(sys.stdin)]\n"
        "print(json.dumps(params, default=str))"
    )
    done = subprocess.run(
        [str(servers.SERVER_VENV / "bin" / "python"), "-c", parse],
        input=json.dumps(argvs), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for params in json.loads(done.stdout):
        assert params["serve_artifacts"] and params["app_name"] == "basic-auth"
        assert params["backend_store_uri"].startswith("postgresql+psycopg2://")
        assert params["artifacts_destination"] and params["allowed_hosts"]


def server_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(servers.SERVER_VENV / "bin" / "python"), "-c", code, *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


READ_BACK = """
import sys, warnings
warnings.simplefilter("ignore")
import mlflow
client = mlflow.MlflowClient(sys.argv[1])
version = client.get_model_version_by_alias("old-model", "production")
run = client.get_run(version.run_id)
print(mlflow.__version__, version.version, run.data.metrics["intent_f1"])
"""


@pytest.mark.slow
def test_a_store_of_the_3_5_1_client_upgrades_with_a_backup_first(tmp_path):
    """docs/shared-server.md, section 6, on SQLite: `mlflow db upgrade` from the server's environment; the
    upgraded store reads back with 3.18 and no longer opens with 3.5.1, the backup still does."""
    store, backup = tmp_path / "mlflow.db", tmp_path / "backup.db"
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    run = client.create_run(client.create_experiment("old", artifact_location=(tmp_path / "a").as_uri()))
    client.log_metric(run.info.run_id, "intent_f1", 0.875)
    client.create_registered_model("old-model")
    client.create_model_version("old-model", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("old-model", "production", "1")
    shutil.copy(store, backup)

    upgrade = subprocess.run(
        [str(servers.SERVER_VENV / "bin" / "mlflow"), "db", "upgrade", f"sqlite:///{store}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]
    read = server_python(READ_BACK, f"sqlite:///{store}")
    assert read.returncode == 0, read.stderr[-2000:]
    assert read.stdout.split() == [pins(REQUIREMENTS / "server-lock.txt")["mlflow"], "1", "0.875"]
    shutil.copy(
        store, tmp_path / "upgraded.db"
    )  # a path this process has not opened before (stores are cached)
    with pytest.raises(Exception, match="Can.t locate revision") as refused:  # alembic's CommandError
        mlflow.MlflowClient(f"sqlite:///{tmp_path / 'upgraded.db'}").search_experiments()
    print(f"\nthe 3.5.1 client on the upgraded store: {type(refused.value).__name__}: {refused.value}"[:300])
    restored = mlflow.MlflowClient(f"sqlite:///{backup}")
    assert str(restored.get_model_version_by_alias("old-model", "production").version) == "1"
