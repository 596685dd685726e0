"""Who may do what on the basic-auth tracking server: apply an access file (users and their permissions).

Runs with the server's environment, as an MLflow admin (MLflow 3.18's auth client: the project's 3.5.1
client cannot grant permissions on a 3.18 server, its permission endpoints are gone):

    MLFLOW_TRACKING_URI=https://mlflow.example.com MLFLOW_TRACKING_USERNAME=admin \\
    MLFLOW_TRACKING_PASSWORD=... NLU_NIGHTLY_PASSWORD=... \\
    .server-venv/bin/python scripts/server_access.py deploy/mlflow-server/access.json

The file names the experiment and the registered model (both created when missing) and, per user, the
environment variable holding a new user's password and a permission on each (READ, USE, EDIT, MANAGE or
NO_PERMISSIONS). Applying it again changes only what differs: users that exist keep their password unless
--reset-passwords; permissions become what the file says. `passwd USER` changes one password (the admin's
first of all) from $NLU_MLFLOW_NEW_PASSWORD.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

warnings.simplefilter("ignore")  # the server's imports are noisy (starlette, pydantic)

import mlflow  # noqa: E402 (after the warning filter)
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.server import get_app_client  # noqa: E402

PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")
NEW_PASSWORD_ENV = "NLU_MLFLOW_NEW_PASSWORD"
EXISTS, MISSING = "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"


@dataclass(frozen=True)
class UserAccess:
    name: str
    password_env: str
    experiment: str
    model: str


@dataclass(frozen=True)
class Access:
    experiment: str
    model: str
    users: tuple[UserAccess, ...]


def load(path: Path) -> Access:
    """The access file, checked before anything is changed (one sentence per problem)."""
    data = json.loads(path.read_text())
    problems = [f"{path}: '{key}' is missing" for key in ("experiment", "model", "users") if key not in data]
    users = []
    for i, entry in enumerate(data.get("users", [])):
        missing = [key for key in ("name", "password_env", "experiment", "model") if key not in entry]
        problems += [f"{path}: users[{i}] has no '{key}'" for key in missing]
        problems += [
            f"{path}: users[{i}].{key} is '{entry[key]}'; use one of {', '.join(PERMISSIONS)}"
            for key in ("experiment", "model")
            if key in entry and entry[key] not in PERMISSIONS
        ]
        if not missing:
            users.append(UserAccess(*(entry[key] for key in ("name", "password_env", "experiment", "model"))))
    if problems:
        sys.exit("\n".join(problems))
    return Access(data["experiment"], data["model"], tuple(users))


def ensure_user(auth, user: UserAccess, reset: bool) -> str:
    password = os.environ.get(user.password_env)
    try:
        auth.get_user(user.name)
    except MlflowException as exc:
        if exc.error_code != MISSING:
            raise
        if not password:
            sys.exit(f"user '{user.name}' does not exist yet: set ${user.password_env} to its password.")
        auth.create_user(user.name, password)
        return "created"
    if reset and password:
        auth.update_user_password(user.name, password)
        return "password reset"
    return "exists"


def ensure_permission(auth, user: str, kind: str, resource_id: str, permission: str) -> str:
    """Make ``permission`` the user's own grant on the resource; says what changed."""
    if permission == "NO_PERMISSIONS":
        try:
            auth.revoke_user_permission(user, kind, resource_id)
            return "revoked"
        except MlflowException as exc:
            if exc.error_code != MISSING:
                raise
            return "unchanged (none)"
    try:
        auth.grant_user_permission(user, kind, resource_id, permission)
        return f"granted {permission}"
    except MlflowException as exc:
        if exc.error_code != EXISTS:
            raise
    current = auth.get_user_permission(user, kind, resource_id).permission
    if current == permission:
        return f"unchanged ({permission})"
    auth.revoke_user_permission(user, kind, resource_id)
    auth.grant_user_permission(user, kind, resource_id, permission)
    return f"{current} -> {permission}"


def apply(access: Access, reset: bool) -> list[str]:
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(access.experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(access.experiment)
    try:
        client.get_registered_model(access.model)
    except MlflowException as exc:
        if exc.error_code != MISSING:
            raise
        client.create_registered_model(access.model)
    auth = get_app_client("basic-auth", tracking_uri=mlflow.get_tracking_uri())
    lines = []
    for user in access.users:
        lines.append(f"user {user.name}: {ensure_user(auth, user, reset)}")
        on_experiment = ensure_permission(auth, user.name, "experiment", experiment_id, user.experiment)
        on_model = ensure_permission(auth, user.name, "registered_model", access.model, user.model)
        lines.append(f"  experiment {access.experiment}: {on_experiment}")
        lines.append(f"  registered model {access.model}: {on_model}")
    return lines


def passwd(user: str) -> list[str]:
    password = os.environ.get(NEW_PASSWORD_ENV)
    if not password:
        sys.exit(f"${NEW_PASSWORD_ENV} is not set: put the new password of '{user}' there.")
    auth = get_app_client("basic-auth", tracking_uri=mlflow.get_tracking_uri())
    own = user == os.environ["MLFLOW_TRACKING_USERNAME"]  # changing one's own password needs the current one
    auth.update_user_password(user, password, os.environ["MLFLOW_TRACKING_PASSWORD"] if own else None)
    return [f"user {user}: password changed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    apply_cmd = commands.add_parser("apply", help="create users and set permissions from an access file")
    apply_cmd.add_argument("access_file", type=Path)
    apply_cmd.add_argument(
        "--reset-passwords", action="store_true", help="also set existing users' passwords"
    )
    passwd_cmd = commands.add_parser("passwd", help=f"change a user's password to ${NEW_PASSWORD_ENV}")
    passwd_cmd.add_argument("user")
    argv = sys.argv[1:]
    if argv and argv[0] not in ("apply", "passwd", "-h", "--help"):
        argv = ["apply", *argv]  # `server_access.py FILE` applies FILE
    args = parser.parse_args(argv)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        if not os.environ.get(name):
            sys.exit(f"{name} is not set: this script works as an MLflow admin on the server.")
    try:
        if args.command == "passwd":
            lines = passwd(args.user)
        else:
            lines = apply(load(args.access_file), args.reset_passwords)
    except MlflowException as exc:
        sys.exit(f"error: {exc.message}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
