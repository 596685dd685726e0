import pytest

from nlu_mlflow.decide import metrics

INTENT_REPORT = {
    "greet": {"precision": 1.0, "recall": 0.5, "f1-score": 0.6667, "support": 2},
    "buy+sell": {"precision": 0.5, "recall": 1.0, "f1-score": 0.6667, "support": 1},
    "accuracy": 0.6667,
    "macro avg": {"precision": 0.75, "recall": 0.75, "f1-score": 0.6667, "support": 3},
    "weighted avg": {"precision": 0.8333, "recall": 0.6667, "f1-score": 0.6660, "support": 3},
}


def test_intent_metrics_use_fixed_names_and_the_report_values():
    scores = metrics.intent_metrics(INTENT_REPORT, accuracy=0.6667)
    assert scores["intent_f1_weighted"] == 0.6660
    assert scores["intent_precision_weighted"] == 0.8333
    assert scores["intent_recall_weighted"] == 0.6667
    assert scores["intent_f1_macro"] == 0.6667
    assert scores["intent_accuracy"] == 0.6667
    assert scores["intent_f1/greet"] == 0.6667
    assert scores["intent_f1/buy_sell"] == 0.6667, "characters MLflow rejects are replaced"
    assert not any("avg" in k for k in scores)


def test_entity_metrics_per_extractor_and_main_headline():
    crf = {
        "product": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 4},
        "weighted avg": {"precision": 0.9, "recall": 0.8, "f1-score": 0.85, "support": 4},
    }
    diet = {"weighted avg": {"precision": 0.5, "recall": 0.4, "f1-score": 0.45, "support": 4}}
    scores = metrics.entity_metrics({"CRFEntityExtractor": crf, "DIETClassifier": diet}, "CRFEntityExtractor")
    assert scores["entity_f1_weighted"] == 0.85
    assert scores["entity_precision_weighted"] == 0.9
    assert scores["entity_recall_weighted"] == 0.8
    assert scores["entity_f1/product"] == 1.0
    assert scores["extractor_f1_weighted/DIETClassifier"] == 0.45
    assert scores["extractor_f1_weighted/CRFEntityExtractor"] == 0.85


def test_no_main_extractor_means_no_headline_entity_metrics():
    assert "entity_f1_weighted" not in metrics.entity_metrics({}, None)


@pytest.mark.parametrize(
    ("pipeline", "active", "expected"),
    [
        (["DIETClassifier", "CRFEntityExtractor"], {"CRFEntityExtractor"}, "CRFEntityExtractor"),
        (
            ["DIETClassifier", "CRFEntityExtractor"],
            {"CRFEntityExtractor", "DIETClassifier"},
            "DIETClassifier",
        ),
        (["CRFEntityExtractor"], set(), "CRFEntityExtractor"),
        ([], {"RegexEntityExtractor"}, None),
    ],
)
def test_main_extractor(pipeline, active, expected):
    assert metrics.main_extractor(pipeline, active) == expected


STORY_REPORT = {
    "utter_greet": {"precision": 1.0, "recall": 0.5, "f1-score": 0.6667, "support": 2},
    "action_listen": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 4},
    "greet": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 2},  # a user turn's intent
    "accuracy": 0.875,
    "macro avg": {"precision": 1.0, "recall": 0.83, "f1-score": 0.89, "support": 8},
    "weighted avg": {"precision": 1.0, "recall": 0.875, "f1-score": 0.9167, "support": 8},
    "conversation_accuracy": {"accuracy": 0.5, "correct": 1, "with_warnings": 0, "total": 2},
}


def test_core_metrics_from_rasa_story_report():
    found = metrics.core_metrics(STORY_REPORT, 0.875, {"utter_greet", "action_listen"})
    assert found == {
        "core_action_accuracy": 0.875,
        "core_conversation_accuracy": 0.5,
        "core_conversations_failed": 1,
        "core_action_f1_weighted": 0.9167,
        "core_action_f1/utter_greet": 0.6667,
        "core_action_f1/action_listen": 1.0,
    }


def test_response_selection_metrics_per_retrieval_intent():
    report = {
        "faq/hours": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 3},
        "faq/vegan": {"precision": 0.5, "recall": 1.0, "f1-score": 0.6667, "support": 1},
        "weighted avg": {"precision": 0.875, "recall": 1.0, "f1-score": 0.9167, "support": 4},
    }
    assert metrics.response_selection_metrics(report, 0.75) == {
        "response_selection_accuracy": 0.75,
        "response_selection_f1_weighted": 0.9167,
        "response_selection_f1/faq/hours": 1.0,
        "response_selection_f1/faq/vegan": 0.6667,
    }
    assert metrics.response_selection_metrics({}, 0.0) == {}
