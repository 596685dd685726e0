"""A recorded conversation as a Rasa test story, written by Rasa's own story writer from a tracker."""

from __future__ import annotations

from pathlib import Path

from nlu_mlflow.errors import InputError


def test_story_yaml(name: str, events: list[dict], domain: Path | None = None) -> str:
    """Rasa's YAML test story (``stories:`` with ``user:`` texts and their intents) of ``events``.

    ``DialogueStateTracker.from_dict`` rebuilds the conversation (with the domain's slots where given),
    ``YAMLStoryWriter.dumps(..., is_test_story=True)`` writes it as `rasa test` reads it."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.core.training_data.story_writer.yaml_story_writer import YAMLStoryWriter
    from rasa.shared.exceptions import RasaException

    try:
        slots = Domain.load(str(domain)).slots if domain else []
        tracker = DialogueStateTracker.from_dict(name, events, slots)
        return YAMLStoryWriter().dumps(tracker.as_story().story_steps, is_test_story=True)
    except (RasaException, KeyError, ValueError) as error:
        raise InputError(
            f"conversation {name}: Rasa cannot rebuild it as a story ({type(error).__name__}: {error}); "
            "check --domain names the assistant's domain.yml."
        ) from None
