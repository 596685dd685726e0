"""Read the history of production from the tracking store: the runs that decided about it (in every
experiment, deleted ones too), the versions' tags and who holds the alias now; ``decide.history`` builds
the rows. The runs' tags carry everything (``decision.json`` beside them is for people).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import mlflow
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from nlu_mlflow import constants as c
from nlu_mlflow.decide import history
from nlu_mlflow.tracking.errors import translated

PAGE = 1000
DECIDED = f"tags.`{c.TAG_DECISION}` LIKE '%'"  # every run that recorded a decision


@translated()
def read(
    model_name: str | None = None, limit: int | None = None, include_kept: bool = False
) -> history.History:
    """Every change of production of ``model_name`` (of every model when None), newest first."""
    client = mlflow.MlflowClient()
    runs = [_decision_run(run) for run in _decided_runs(client)]
    runs = [run for run in runs if model_name is None or run.model_name == model_name]
    holders = _holders(client, model_name)
    models = set(holders) | {run.model_name for run in runs if run.model_name}
    holders = {model: holders.get(model) for model in sorted(models)}
    versions = {
        (model, str(v.version)): dict(v.tags or {}) for model in models for v in _versions(client, model)
    }
    return history.build(runs, versions, holders, include_kept, limit)


def _pages(search: Callable[[str | None], list]) -> Iterator:
    token = None
    while True:
        page = search(token)
        yield from page
        token = page.token
        if not token:
            return


def _decided_runs(client: mlflow.MlflowClient) -> Iterator:
    experiments = [
        e.experiment_id
        for e in _pages(lambda t: client.search_experiments(ViewType.ALL, max_results=PAGE, page_token=t))
    ]
    for start in range(0, len(experiments), 100):
        ids = experiments[start : start + 100]
        yield from _pages(
            lambda t, ids=ids: client.search_runs(
                ids, DECIDED, run_view_type=ViewType.ALL, max_results=PAGE, page_token=t
            )
        )


def _decision_run(run) -> history.DecisionRun:
    tags, info = run.data.tags, run.info
    return history.DecisionRun(
        run_id=info.run_id,
        role=tags.get(c.TAG_ROLE, c.ROLE_WORKFLOW),
        model_name=tags.get(c.TAG_MODEL_NAME),
        decision=tags.get(c.TAG_DECISION, ""),
        reasons=tags.get(c.TAG_DECISION_REASONS, ""),
        moved=tags.get(c.TAG_PRODUCTION_MOVED) == "true",
        to_version=tags.get(c.TAG_CANDIDATE_VERSION),
        compared_with=tags.get(c.TAG_CHAMPION_VERSION),
        replaced=tags.get(c.TAG_REPLACED_VERSION),
        moved_at=tags.get(c.TAG_MOVED_AT),
        started_ms=info.start_time or 0,
        ended_ms=info.end_time,
        status=info.status,
        user=info.user_id or None,
        rechecks=int(tags.get(c.TAG_RECHECKS, "0") or 0),
        deleted=info.lifecycle_stage == "deleted",
    )


def _holders(client: mlflow.MlflowClient, model_name: str | None) -> dict[str, str | None]:
    """Registered model -> the version holding ``production`` now (None when no version does)."""
    if model_name is not None:
        try:
            models = [client.get_registered_model(model_name)]
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            return {}
    else:
        models = _pages(lambda t: client.search_registered_models(max_results=PAGE, page_token=t))
    return {m.name: (str(m.aliases[c.ALIAS_PRODUCTION]) if c.ALIAS_PRODUCTION in m.aliases else None)
            for m in models}  # fmt: skip


def _versions(client: mlflow.MlflowClient, model_name: str) -> Iterator:
    name = model_name.replace("'", "\\'")
    return _pages(lambda t: client.search_model_versions(f"name='{name}'", max_results=PAGE, page_token=t))
