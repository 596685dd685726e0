"""Credentials stay out of tracking URIs (they are logged and recorded); refusals against a real basic-auth
server are in tests/workflow/test_shared_server.py."""

from __future__ import annotations

import pytest

from nlu_mlflow.decide.redact import redact_url
from nlu_mlflow.errors import InputError
from nlu_mlflow.tracking.errors import checked_uri


@pytest.mark.parametrize(
    "uri",
    [
        "https://mlflow.example.com",
        "http://127.0.0.1:5000/prefix",
        "sqlite:////tmp/mlruns.db",
        "postgresql+psycopg2://mlflow@db:5432/mlflow",  # a user name alone is no secret
        "databricks",
    ],
)
def test_uris_without_a_password_pass(uri):
    assert checked_uri(uri) == uri


@pytest.mark.parametrize(
    "uri, says",
    [
        (
            "https://alice:s3cret-pw@mlflow.example.com:8443/x",
            "give https://mlflow.example.com:8443/x and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
        ),
        ("http://:s3cret-pw@127.0.0.1:5000", "give http://127.0.0.1:5000 and set"),
        ("postgresql://mlflow:s3cret-pw@db/mlflow", "PGPASSWORD for PostgreSQL"),
    ],
)
def test_a_password_in_a_uri_is_refused_in_one_sentence_without_it(uri, says):
    with pytest.raises(InputError) as refused:
        checked_uri(uri)
    [problem] = refused.value.problems
    assert "put no password in the URL" in problem and says in problem, problem
    assert "s3cret-pw" not in problem
    assert redact_url(uri) in problem
