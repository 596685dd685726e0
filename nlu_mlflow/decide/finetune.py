"""Whether a config is fine-tuned from the production model, and when a --finetune-only run trains from
scratch instead (pure: facts in, one-sentence reasons out).

Rasa fine-tunes (``model_to_finetune``) only what its ``FinetuningValidator`` accepts: an archive of the same
Rasa version and pipeline whose NLU labels (intents, entities, entity roles and groups, action names) are
exactly today's and, for a whole assistant, whose domain is unchanged in what the dialogue policies train on.
Only components that train in epochs (DIETClassifier, ResponseSelector, TEDPolicy, UnexpecTEDIntentPolicy)
continue from their weights; every other component trains from scratch in a fine-tune too. Mid-training,
DIET and the ResponseSelector refuse features whose sizes shrank position by position (``feature_problem``;
the table of changes Rasa absorbs and refuses: docs/finetuning.md). ``rasa.finetune``
gathers the facts, these functions judge them, and the workflow logs and tags each reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nlu_mlflow import constants as c

FULL_TRAINING_TYPES = frozenset({"both", "core", "end_to_end"})  # archives with dialogue policies
LABEL_KINDS = ("intents", "entities")  # what an archive's classifiers say they know, for the explanation


def finetuned_name(config: str) -> str:
    """The candidate (and run) name of ``config`` fine-tuned from production: ``diet@finetuned``."""
    return config + c.FINETUNED_SUFFIX


def base_config(candidate: str) -> str:
    """The config a candidate name was trained from: ``diet`` for ``diet@finetuned``."""
    return candidate.removesuffix(c.FINETUNED_SUFFIX)


@dataclass(frozen=True)
class Base:
    """The production version as a starting point, as its registry tags describe it."""

    version: str
    config: str  # the candidate it was registered from (tag ``config``), e.g. diet or diet@finetuned
    config_digest: str | None
    depth: int = 0  # fine-tunes in a row behind it (0: trained from scratch)
    run_id: str | None = None  # its source run (the training data is an artifact there)
    train_digest: str | None = None

    @classmethod
    def from_tags(cls, version: str, run_id: str | None, tags: Mapping[str, str]) -> Base:
        depth = str(tags.get(c.TAG_FINETUNE_DEPTH, "0"))
        return cls(
            str(version),
            tags.get(c.TAG_CONFIG, "an unknown config"),
            tags.get("config_digest"),
            int(depth) if depth.isdigit() else 0,
            run_id,
            tags.get("train_digest"),
        )


@dataclass(frozen=True)
class Delta:
    """Examples added and removed since the base version's training data (compared by content digest)."""

    added: int
    removed: int
    base_examples: int

    @property
    def growth(self) -> float:
        return self.added / self.base_examples if self.base_examples else float("inf")


def config_problem(
    config: str, digest: str, epoch_components: Sequence[str], base: Base | None, model_name: str
) -> str | None:
    """Why ``config`` (config digest ``digest``) cannot start from ``base``, judged on names and tags alone
    (before the archive is downloaded); None when the archive is worth a look."""
    if base is None:
        return f"no production version of '{model_name}' to fine-tune from"
    if not epoch_components:
        return (
            f"{config} has no component Rasa fine-tunes (only components that train in epochs continue from "
            "earlier weights: DIETClassifier, ResponseSelector, TEDPolicy), so a fine-tune would be a full "
            "training"
        )
    if not base.config_digest:
        return f"production version {base.version} has no config_digest tag, so its config cannot be compared"
    if base.config_digest == digest:
        return None
    if base_config(base.config) == config:
        return (
            f"config changed: {config} has config digest {digest}, production version {base.version} was "
            f"trained with {base.config_digest} (fine-tuning needs the same components and options, epochs "
            "included)"
        )
    return (
        f"production version {base.version} was trained from another config ({base.config}, digest "
        f"{base.config_digest}), not from {config} (digest {digest})"
    )


@dataclass(frozen=True)
class ArchiveFacts:
    """What decides whether Rasa fine-tunes an archive on today's data (gathered by ``rasa.finetune``)."""

    rasa_version: str | None  # that trained the archive
    this_rasa: str
    archive_type: str | None  # Rasa's training type of the archive: nlu, both, core, end_to_end
    run_type: str  # what today's training makes: nlu or both
    stored: Mapping[str, str]  # the archive's FinetuningValidator fingerprints: nlu, core
    today: Mapping[str, str]  # the same fingerprints of today's training data
    known: Mapping[str, frozenset[str]] | None  # labels the archive's classifiers know (None: none stored)
    labels: Mapping[str, frozenset[str]]  # today's labels


def archive_problem(facts: ArchiveFacts, version: str) -> str | None:
    """Why Rasa would refuse to fine-tune production ``version`` on today's data; None when it fine-tunes."""
    if facts.rasa_version != facts.this_rasa:
        return (
            f"production version {version} was trained by Rasa {facts.rasa_version}, this is Rasa "
            f"{facts.this_rasa} (Rasa fine-tunes only models of its own version)"
        )
    archive_full = facts.archive_type in FULL_TRAINING_TYPES
    run_full = facts.run_type in FULL_TRAINING_TYPES
    if archive_full and not run_full:
        return f"production version {version} is a whole assistant (NLU and dialogue); this run trains NLU"
    if run_full and not archive_full:
        return (
            f"production version {version} is an NLU model; this run trains whole assistants (NLU, dialogue)"
        )
    if "nlu" not in facts.stored or (run_full and "core" not in facts.stored):
        return f"production version {version} has no fine-tuning fingerprints (Rasa's FinetuningValidator)"
    if facts.stored["nlu"] != facts.today["nlu"]:
        return label_problem(facts.known, facts.labels, version)
    if run_full and facts.stored["core"] != facts.today["core"]:
        return (
            f"the domain changed since production version {version} in what the dialogue policies train on "
            "(intents, entities, slots, actions, response names, forms); Rasa fine-tunes a whole assistant "
            "only on the same domain"
        )
    return None


def label_problem(
    known: Mapping[str, frozenset[str]] | None, labels: Mapping[str, frozenset[str]], version: str
) -> str:
    """The NLU labels differ from the base model's: named where the archive says which it knows."""
    known = known or {}
    kinds = [k for k in LABEL_KINDS if k in known]
    for kind in kinds:
        added = sorted(labels.get(kind, frozenset()) - known[kind])
        if added:
            return f"new {kind} the model cannot take: {', '.join(added[:5])}"
    for kind in kinds:
        gone = sorted(known[kind] - labels.get(kind, frozenset()))
        if gone:
            return (
                f"{kind} production version {version} knows have no example in today's data (Rasa fine-tunes "
                f"only on data with every label the model knows): {', '.join(gone[:5])}"
            )
    return (
        "the NLU labels (intents, entities, entity roles or groups, action names) differ from those "
        f"production version {version} was trained on; Rasa fine-tunes only on data with the same labels"
    )


def full_retrain_reason(
    base: Base, every: int | None, delta: Delta | None, max_growth: float | None
) -> str | None:
    """Why a --finetune-only run trains from scratch although it could fine-tune (None: it fine-tunes).

    ``every``: a full training when production is already the ``every - 1``-th fine-tune in a row
    (``full_retrain_every``); ``max_growth``: when more examples were added since production's training
    data than this share of it (``full_retrain_growth``). None turns either off."""
    if every and base.depth >= every - 1:
        return (
            f"production version {base.version} is fine-tune {base.depth} in a row since a full training and "
            f"full_retrain_every is {every}: trained from scratch so that fine-tuned models do not drift"
        )
    if max_growth is None:
        return None
    if delta is None:
        return (
            f"the training data of production version {base.version} is not on record, so the data's growth "
            f"cannot be checked against full_retrain_growth {max_growth:g}: trained from scratch"
        )
    if delta.growth > max_growth:
        return (
            f"the data grew by {delta.growth:.0%} since production version {base.version} ({delta.added} "
            f"examples added to {delta.base_examples}), more than full_retrain_growth {max_growth:.0%}: "
            "trained from scratch"
        )
    return None


# --- featurizer sizes: what DIET and the ResponseSelector compare before they continue training ---

# attribute (text) -> feature type (sequence, sentence) -> one size per featurizer that gave features
Sizes = Mapping[str, Mapping[str, Sequence[int]]]


@dataclass(frozen=True)
class SparseSizes:
    """One classifier's sparse feature sizes: what production's model stored
    (``<Component>.sparse_feature_sizes.json``) and what today's data, featurized the way Rasa's fine-tune
    featurizes it, gives; ``featurizers`` names today's featurizer behind each size."""

    component: str  # DIETClassifier, ResponseSelector
    stored: Sizes | None  # None: the classifier did not train in production (no data for it)
    today: Sizes
    featurizers: Mapping[str, Mapping[str, Sequence[str]]]


@dataclass(frozen=True)
class PatternCount:
    """A RegexFeaturizer's patterns (regexes and lookup tables): in production, and after Rasa's fine-tune
    merges today's into them (a pattern of a known name replaces it; a new name is appended)."""

    featurizer: str
    stored: int
    today: int


def feature_problem(
    classifiers: Sequence[SparseSizes], patterns: Sequence[PatternCount], version: str
) -> str | None:
    """Why Rasa would stop fine-tuning production ``version`` when a classifier compares its feature sizes
    (``TransformerRasaModel.adjust_for_incremental_training``); None when it absorbs them.

    Rasa pairs the sizes position by position (one position per featurizer that gave features) and refuses
    when one is smaller ("Sparse feature sizes have decreased"); sizes that grow widen the input layer. A
    featurizer whose features appear (none in production) shifts every later position: refused whether or not
    a pair happens to shrink, since the widened layer would be cut by the old positions."""
    for sizes in classifiers:
        if sizes.stored is None:
            if any(n for kinds in sizes.today.values() for ns in kinds.values() for n in ns):
                return (
                    f"{sizes.component} did not train in production version {version} (no data for it) and "
                    "has data today: Rasa fine-tunes only a model it trained"
                )
            continue
        problem = _sizes_problem(sizes, sizes.stored, patterns, version)
        if problem:
            return problem
    return None


def _sizes_problem(
    sizes: SparseSizes, stored_sizes: Sizes, patterns: Sequence[PatternCount], version: str
) -> str | None:
    """``stored_sizes`` is ``sizes.stored``, known present (a classifier production trained)."""
    for attribute, kinds in sizes.today.items():
        for kind, today in kinds.items():
            stored = (stored_sizes.get(attribute) or {}).get(kind)
            if stored is None:
                return (
                    f"{sizes.component}: today's data gives {kind} features for '{attribute}', production "
                    f"version {version}'s model has none: Rasa fine-tunes only on the same kinds of features"
                )
            shrunk = [i for i, (n, s) in enumerate(zip(today, stored, strict=False)) if n < s]
            if len(today) != len(stored):
                return _appeared(sizes, stored, patterns, attribute, kind, version)
            if shrunk:
                names = sizes.featurizers.get(attribute, {}).get(kind, ())
                name = names[shrunk[0]] if shrunk[0] < len(names) else f"featurizer {shrunk[0] + 1}"
                return _shrunk(name, stored[shrunk[0]], today[shrunk[0]], attribute, version)
    return None


def _appeared(
    sizes: SparseSizes,
    stored_kind: Sequence[int],
    patterns: Sequence[PatternCount],
    attribute: str,
    kind: str,
    version: str,
) -> str:
    new = [p for p in patterns if p.stored == 0 and p.today > 0]
    if new:
        return (
            f"regex and lookup-table features appear: production version {version} was trained without any "
            f"({new[0].featurizer} had no pattern), today's data has {new[0].today}; Rasa compares "
            "feature sizes position by position and stops a fine-tune mid-training ('Sparse feature sizes "
            "have decreased'): trained from scratch"
        )
    names = ", ".join(sizes.featurizers.get(attribute, {}).get(kind, ()))
    stored = len(stored_kind)
    return (
        f"{sizes.component}: today's data gives {len(sizes.today[attribute][kind])} kinds of {kind} features "
        f"for '{attribute}' ({names}), production version {version}'s model {stored}; Rasa compares feature "
        "sizes position by position and stops a fine-tune mid-training: trained from scratch"
    )


def _shrunk(featurizer: str, stored: int, today: int, attribute: str, version: str) -> str:
    why = (
        " (it learns its feature values from the data each training: a value production saw, e.g. a digit "
        "or an upper-case word at some window position, no longer occurs)"
        if featurizer.startswith("LexicalSyntacticFeaturizer")
        else ""
    )
    return (
        f"{featurizer}'s features for '{attribute}' shrink from {stored} to {today} since production version "
        f"{version}{why}; Rasa refuses to fine-tune on fewer features ('Sparse feature sizes have "
        "decreased'): trained from scratch"
    )
