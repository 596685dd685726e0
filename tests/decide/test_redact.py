import pytest

from nlu_mlflow.decide.redact import redact, redact_text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://alice:PASSWORD@host/train.yml?X-Amz-Signature=SIG", "http://alice:***@host/train.yml?***"),
        ("postgresql://user:pw@db:5432/mlflow", "postgresql://user:***@db:5432/mlflow"),
        ("postgresql+psycopg2://u:p%40ss@db/m?sslpassword=x", "postgresql+psycopg2://u:***@db/m?***"),
        ("data from https://h/x.yml?token=abc#frag, then", "data from https://h/x.yml?***, then"),
        (
            "sqlite:///mlruns.db and file:///tmp/x and runs:/abc/model",
            "sqlite:///mlruns.db and file:///tmp/x and runs:/abc/model",
        ),
        ("http://127.0.0.1:5000.", "http://127.0.0.1:5000."),
        ("no url here", "no url here"),
    ],
)
def test_passwords_and_query_strings_are_hidden_and_the_rest_is_kept(text, shown):
    assert redact_text(text) == shown


def test_nested_records_are_redacted_values_and_keys():
    record = {"data": ["s3://k:SECRET@bucket/x"], "n": 3, "http://u:SECRET@h": None}
    assert "SECRET" not in repr(redact(record))
    assert redact(record)["n"] == 3
