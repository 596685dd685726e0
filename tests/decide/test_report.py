import pandas as pd

from nlu_mlflow.decide.report import comparison_markdown

CANDIDATE = {
    "intent_f1_weighted": 0.9,
    "intent_f1/greet": 1.0,
    "intent_f1/buy": 0.8,
    "entity_f1/product": 0.7,
    "entity_f1_weighted": 0.7,
    "critical_pass_rate": 0.5,
}
CHAMPION = {
    "intent_f1_weighted": 0.85,
    "intent_f1/greet": 0.9,
    "intent_f1/buy": 0.85,
    "entity_f1/product": 0.75,
    "entity_f1_weighted": 0.75,
    "critical_pass_rate": 1.0,
}
CRITICAL = pd.DataFrame(
    [
        {
            "text": "cancel it",
            "expected_intent": "cancel",
            "predicted_intent": "greet",
            "passed": False,
            "reason": "predicted intent 'greet', expected 'cancel'",
        },
        {"text": "hi", "expected_intent": "greet", "predicted_intent": "greet", "passed": True, "reason": ""},
    ]
)


def test_report_has_overall_per_intent_per_entity_and_critical_sections():
    text = comparison_markdown(
        "Candidate diet vs production version 2",
        CANDIDATE,
        CHAMPION,
        ["kept: reasons"],
        {"greet": 6, "buy": 3},
        CRITICAL,
        None,
    )
    assert text.startswith("# Candidate diet vs production version 2")
    assert "- kept: reasons" in text
    assert "| `intent_f1_weighted` | 0.9000 | 0.8500 | +0.0500 |" in text
    assert "| `buy` | 3 | 0.8000 | 0.8500 | -0.0500 |" in text
    assert "| `product` | 0.7000 | 0.7500 | -0.0500 |" in text
    assert "| cancel it | cancel | greet | predicted intent 'greet', expected 'cancel' |" in text
    assert "| hi |" not in text


def test_report_without_champion():
    text = comparison_markdown("first", CANDIDATE, None, [], {"greet": 6}, None)
    assert "| `intent_f1_weighted` | 0.9000 | – | – |" in text
    assert "production failures" not in text
