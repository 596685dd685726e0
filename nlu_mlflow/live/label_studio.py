"""Label Studio's REST API, the few calls `inbox push|pull|forget` make, with ``requests`` (its SDK needs
pydantic 2, Rasa 3.6 pydantic 1).

Its failures become one ``LabelStudioError`` sentence naming what failed and the fix: a server that does not
answer, a refused token, a refused request. The token is sent in the ``Authorization`` header only and never
appears in a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import requests

from nlu_mlflow.errors import InputError

URL_ENV = "LABEL_STUDIO_URL"
TOKEN_ENV = "LABEL_STUDIO_API_KEY"
TIMEOUT_S = 60
PAGE = 100
START = "scripts/labelstudio.sh"


class LabelStudioError(RuntimeError):
    """Label Studio is down, refused the token or refused a request; the message is safe to show."""


class LabelStudioDown(LabelStudioError):
    pass


class LabelStudioRefused(LabelStudioError):
    pass


@dataclass(frozen=True)
class Project:
    id: int
    title: str
    label_config: str


class LabelStudio:
    """A client of one Label Studio server (``url``) with an API token."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = TIMEOUT_S):
        self.url = (url or os.environ.get(URL_ENV) or "").rstrip("/")
        token = token or os.environ.get(TOKEN_ENV)
        if not self.url:
            raise InputError(
                f"no Label Studio URL: set {URL_ENV} (e.g. http://127.0.0.1:8080) or pass --label-studio-url."
            )
        if not token:
            raise InputError(
                f"no Label Studio API token: set {TOKEN_ENV} to the token of a Label Studio user "
                f"(LABEL_STUDIO_USER_TOKEN of {START}, or the user's Account & Settings page)."
            )
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Token {token}"
        self.timeout = timeout

    def _call(self, method: str, path: str, what: str, **kwargs):
        try:
            response = self._session.request(method, f"{self.url}{path}", timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise LabelStudioDown(
                f"Label Studio at {self.url} does not answer ({type(error).__name__}) while trying to "
                f"{what}; start it ({START}) or fix {URL_ENV}."
            ) from None
        if response.status_code in (401, 403):
            raise LabelStudioRefused(
                f"Label Studio at {self.url} refused the API token in {TOKEN_ENV} ({response.status_code}) "
                f"while trying to {what}; give the token of a user of that server (legacy tokens must be "
                "enabled: LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true at its first start, as "
                f"{START} does)."
            )
        if response.status_code >= 400:
            detail = " ".join(response.text.split())[:300]
            raise LabelStudioError(
                f"Label Studio at {self.url} refused to {what} ({response.status_code}: {detail}); "
                "fix the request or the project there."
            )
        return response.json() if response.content else None

    # --- projects -------------------------------------------------------------------------------------------
    def find_project(self, title: str) -> Project | None:
        page = 1
        while True:
            found = self._call(
                "GET", "/api/projects", f"list projects (looking for '{title}')",
                params={"page": page, "page_size": PAGE, "title": title},
            )  # fmt: skip
            rows = found.get("results", []) if isinstance(found, dict) else found
            for row in rows:
                if row.get("title") == title:
                    return Project(row["id"], row["title"], row.get("label_config", ""))
            if not isinstance(found, dict) or not found.get("next"):
                return None
            page += 1

    def ensure_project(self, title: str, label_config: str, description: str = "") -> Project:
        """The project named ``title`` with ``label_config``: created, or its config updated."""
        project = self.find_project(title)
        if project is None:
            row = self._call(
                "POST", "/api/projects", f"create project '{title}'",
                json={"title": title, "label_config": label_config, "description": description},
            )  # fmt: skip
            return Project(row["id"], row["title"], row["label_config"])
        if project.label_config != label_config:
            self._call(
                "PATCH", f"/api/projects/{project.id}", f"update the labeling config of project '{title}'",
                json={"label_config": label_config},
            )  # fmt: skip
        return Project(project.id, title, label_config)

    # --- tasks ----------------------------------------------------------------------------------------------
    def import_tasks(self, project_id: int, tasks: list[dict]) -> list[int]:
        """Create tasks (``data`` and ``predictions``); returns their ids in the same order."""
        if not tasks:
            return []
        done = self._call(
            "POST", f"/api/projects/{project_id}/import", f"import {len(tasks)} task(s) into {project_id}",
            params={"return_task_ids": "true"}, json=tasks,
        )  # fmt: skip
        return list(done.get("task_ids") or [])

    def tasks(self, project_id: int) -> list[dict]:
        """Every task of the project with its annotations (Label Studio's JSON export)."""
        return self._call(
            "GET", f"/api/projects/{project_id}/export", f"export the tasks of project {project_id}",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )  # fmt: skip

    def predictions(self, task_id: int) -> list[dict]:
        """The pre-annotations of one task (the export names them by id only)."""
        found = self._call(
            "GET", "/api/predictions", f"read the predictions of task {task_id}", params={"task": task_id}
        )
        return found.get("results", []) if isinstance(found, dict) else found

    def delete_task(self, task_id: int | str) -> bool:
        """Delete one task; False when it was gone already."""
        try:
            self._call("DELETE", f"/api/tasks/{int(task_id)}", f"delete task {task_id}")
        except LabelStudioError as error:
            if "(404" in str(error):
                return False
            raise
        return True

    def annotate(self, task_id: int, result: list[dict], cancelled: bool = False) -> dict:
        """Submit an annotation as the token's user (what an annotator's Submit or Skip does)."""
        return self._call(
            "POST", f"/api/tasks/{task_id}/annotations", f"annotate task {task_id}",
            json={"result": result, "was_cancelled": cancelled},
        )  # fmt: skip
