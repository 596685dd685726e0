"""The private-function patches run only on the Rasa they were verified against (issue 13 item 17).

Only one Rasa can be installed here, so another version is simulated by replacing what
``patches.installed_rasa`` reports; the patched Rasa functions themselves are the real ones.
"""

import logging

from rasa.utils.tensorflow.models import RasaModel

from nlu_mlflow.rasa import batched, fast_load, patches


def test_the_installed_rasa_is_the_verified_one_and_gets_the_fast_paths():
    assert patches.installed_rasa() in patches.VERIFIED_RASA
    original = RasaModel.__dict__["load"]
    with fast_load.enabled():
        assert RasaModel.__dict__["load"] is not original


def test_another_rasa_takes_rasas_own_paths_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setattr(patches, "installed_rasa", lambda: "3.7.0")
    monkeypatch.setattr(patches, "_warned", False)
    original = RasaModel.__dict__["load"]
    with caplog.at_level(logging.WARNING, logger="nlu_mlflow"):
        with fast_load.enabled():
            assert RasaModel.__dict__["load"] is original
        assert batched.supports(object()) is False
        assert "3.7.0" in batched.unsupported_reason(object())  # batched inference stands aside too
        assert patches.verified() is False
    warnings = [r.getMessage() for r in caplog.records if "verified against" in r.getMessage()]
    assert len(warnings) == 1 and "Rasa 3.7.0 is installed" in warnings[0]
