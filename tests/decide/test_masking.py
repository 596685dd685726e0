"""Masking personal data: text in, masked text and what was masked out (a table of cases)."""

from __future__ import annotations

import pytest

from nlu_mlflow.decide.masking import mask


@pytest.mark.parametrize(
    "text, masked, kinds",
    [
        ("I want a pizza", "I want a pizza", ()),
        ("2 large pizzas at 7pm", "2 large pizzas at 7pm", ()),
        ("write to anna.b+pizza@mail.example.com please", "write to [EMAIL] please", ("EMAIL",)),
        ("call me on +49 151 1234 5678", "call me on [PHONE]", ("PHONE",)),
        ("my number is (030) 123-4567.", "my number is [PHONE].", ("PHONE",)),
        ("card 4111 1111 1111 1111 exp 12/29", "card [CARD] exp 12/29", ("CARD",)),
        ("card 4111-1111-1111-1111", "card [CARD]", ("CARD",)),
        ("pay with 4111111111111111", "pay with [CARD]", ("CARD",)),
        ("order 123456 is late", "order 123456 is late", ()),  # 6 digits: an order number, kept
        ("a@b.io or 0151 2345678", "[EMAIL] or [PHONE]", ("EMAIL", "PHONE")),
        ("on 2024-01-05", "on [PHONE]", ("PHONE",)),  # errs towards masking (documented)
    ],
)
def test_patterns(text, masked, kinds):
    result = mask(text)
    assert (result.text, result.masked) == (masked, kinds)


def test_sensitive_entities_are_masked_and_never_kept_as_entities():
    text = "I am Anna and want a large pizza"
    entities = [
        {"entity": "name", "start": 5, "end": 9, "value": "Anna", "extractor": "CRFEntityExtractor"},
        {"entity": "size", "start": 21, "end": 26, "value": "large", "extractor": "CRFEntityExtractor"},
    ]
    result = mask(text, entities, {"name"})
    assert result.text == "I am [NAME] and want a large pizza"
    assert result.masked == ("NAME",)
    assert result.entities == ({"entity": "size", "start": 23, "end": 28, "value": "large"},)
    assert result.text[23:28] == "large"


def test_an_entity_touching_a_masked_span_is_dropped_and_later_ones_move():
    text = "mail bob@x.org a small pizza"
    entities = [
        {"entity": "email", "start": 5, "end": 14, "value": "bob@x.org"},
        {"entity": "size", "start": 17, "end": 22, "value": "small"},
    ]
    result = mask(text, entities)
    assert result.text == "mail [EMAIL] a small pizza"
    assert result.entities == ({"entity": "size", "start": 15, "end": 20, "value": "small"},)
    assert "bob" not in repr(result)


def test_entities_without_a_usable_span_are_left_out():
    result = mask("hi", [{"entity": "x", "start": 0, "end": 9, "value": "?"}, {"entity": "y", "value": "z"}])
    assert result.entities == ()
