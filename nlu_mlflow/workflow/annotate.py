"""Annotation's steps in order: push the inbox's top items to Label Studio with the production parse as a
pre-annotation, pull the submitted annotations back into the project as Rasa NLU YAML, and the same round
trip through a file a person edits (export, import).

Nothing is lost or applied twice: an annotation is stored in the inbox (idempotent by its Label Studio id or
the imported row's content) before anything is written; the YAML file names the annotations it holds in its
header and is written whole; only then are they marked written. A crash in between leaves a file whose
header the next pull reads (``live.annotated.recorded``) instead of writing them again.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nlu_mlflow.decide import labeling
from nlu_mlflow.decide import replay as replay_rules
from nlu_mlflow.decide.inbox import normalise
from nlu_mlflow.errors import InputError
from nlu_mlflow.live import annotated
from nlu_mlflow.live.inbox_store import OPEN_STATES, Annotation, InboxStore, Item
from nlu_mlflow.live.label_studio import LabelStudio

logger = logging.getLogger(__name__)

ANNOTATED_DIR = Path("data") / "nlu" / "annotated"
LIVE_TEST_DIR = Path(
    "live_tests"
)  # outside data/ and tests/: neither trained on nor in the held-out test set
DEFAULT_TITLE = "nlu-mlflow inbox"
SERVED = "served"  # the pre-annotation's model version when no production model parsed the item


@dataclass(frozen=True)
class Target:
    """Where annotations go: the project (its domain and NLU data), the folder, an optional git branch."""

    project: object  # rasa.project.Project
    nlu: object  # rasa.data.NluData: the training data today
    schema: labeling.Schema
    folder: Path
    git_branch: str | None = None
    live_test_share: float = 0.0  # a seeded share of the annotations goes to ``live_test_folder`` instead
    live_test_folder: Path | None = None  # NLU test data, never training data (``run --live-test-data``)


def target(
    project_dir: Path,
    folder: Path | None = None,
    git_branch: str | None = None,
    live_test_share: float = 0.0,
    live_test_folder: Path | None = None,
) -> Target:
    from nlu_mlflow.rasa import labeling as rasa_labeling
    from nlu_mlflow.rasa.data import load_nlu
    from nlu_mlflow.rasa.project import load_project

    project = load_project(project_dir)
    nlu = load_nlu(project.data_dir, project=True)
    schema = rasa_labeling.schema(project, nlu)
    live = live_test_folder or project.root / LIVE_TEST_DIR
    return Target(
        project, nlu, schema, folder or project.root / ANNOTATED_DIR, git_branch, live_test_share, live
    )


# --- push ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pushed:
    project_id: int
    tasks: int
    recovered: int  # items found in Label Studio already (an earlier push stopped before recording them)
    model_version: str

    def line(self) -> str:
        return (
            f"pushed {self.tasks} item(s) to Label Studio project {self.project_id} with pre-annotations "
            f"from model version {self.model_version}; {self.recovered} found there already"
        )


Parser = Callable[[Sequence[str]], list[dict]]


def push(
    store: InboxStore,
    client: LabelStudio,
    schema: labeling.Schema,
    limit: int,
    title: str = DEFAULT_TITLE,
    production: tuple[str, Parser] | None = None,
) -> Pushed:
    """The ``limit`` top open items as tasks; ``production`` (version, batched parser) pre-annotates them,
    else each item's served parse does."""
    project = client.ensure_project(
        title, labeling.label_config(schema), "Live messages from nlu-mlflow's inbox"
    )
    recovered = _recover_pushed(store, client, project.id)
    items = store.ranked(limit)
    if production is not None:
        version, parse = production
        predictions = [labeling.prediction(p, schema, version) for p in parse([i.text for i in items])]
    else:
        predictions = [labeling.prediction(served_parse(i), schema, i.model_version or SERVED) for i in items]
    tasks = [
        {"data": task_data(i), "predictions": [p.to_json()]} for i, p in zip(items, predictions, strict=True)
    ]
    task_ids = client.import_tasks(project.id, tasks)
    store.mark_pushed([i.id for i in items], task_ids)
    return Pushed(project.id, len(task_ids), recovered, production[0] if production else SERVED)


def run_push(
    store: InboxStore,
    client: LabelStudio,
    schema: labeling.Schema,
    limit: int,
    title: str,
    model_name: str | None,
    tracking_uri: str | None,
) -> Pushed:
    """``inbox push``: pre-annotated by the production version of ``model_name`` (None: by the served
    parse the inbox kept)."""
    if model_name is None:
        return push(store, client, schema, limit, title)
    from nlu_mlflow.tracking import runs
    from nlu_mlflow.workflow.inbox import production

    runs.open_store(
        tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or runs.default_tracking_uri(Path.cwd())
    )
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-push-") as work:
        found = production(model_name, Path(work))
        if found is None:
            logger.warning("no production version of %s: the served parse pre-annotates", model_name)
            return push(store, client, schema, limit, title)
        return push(store, client, schema, limit, title, (found.version, found.parse))


def task_data(item: Item) -> dict:
    return {
        labeling.TEXT: item.text, "item_id": item.id, "count": item.count,
        "reasons": ", ".join(item.reasons), "served_intent": item.intent or "",
    }  # fmt: skip


def served_parse(item: Item) -> dict:
    """What the assistant answered with, as Rasa's parse (the inbox keeps it, masked)."""
    return {
        "text": item.text,
        "intent": {"name": item.intent, "confidence": item.confidence or 0.0},
        "intent_ranking": item.ranking,
        "entities": item.entities,
    }


def _recover_pushed(store: InboxStore, client: LabelStudio, project_id: int) -> int:
    """Items already in the project but still open in the inbox (a push that stopped after Label Studio
    created the tasks) are recorded as pushed, so they are not sent twice."""
    found = {t["data"].get("item_id"): t["id"] for t in client.tasks(project_id)}
    pairs = [
        (item_id, task_id)
        for item_id, task_id in found.items()
        if item_id is not None
        and (item := store.item(int(item_id))) is not None
        and item.state in OPEN_STATES
    ]
    if pairs:
        store.mark_pushed([p[0] for p in pairs], [p[1] for p in pairs])
    return len(pairs)


# --- pull and import -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pulled:
    new: int  # annotations added to the inbox by this call
    skipped: int  # of those, skipped by the annotator
    written: int  # annotations written into ``file``
    file: str | None
    recovered: int = 0  # found in a file an earlier pull wrote but did not record
    conflicts: list[str] = field(default_factory=list)
    live_test: int = 0  # annotations kept apart as live test data (--live-test-share)

    def line(self) -> str:
        where = f"into {self.file}" if self.file else "(no file written)"
        return (
            f"{self.new} new annotation(s) ({self.skipped} skipped by the annotator); wrote {self.written} "
            f"{where}; {len(self.conflicts)} not written (conflict with the training data)"
            + (f"; {self.recovered} found written by an earlier pull" if self.recovered else "")
            + (f"; {self.live_test} kept apart as live test data" if self.live_test else "")
        )


def pull(store: InboxStore, client: LabelStudio, where: Target, title: str = DEFAULT_TITLE) -> Pulled:
    """Label Studio's submitted annotations into the inbox, then the unwritten ones into the project."""
    project = client.find_project(title)
    if project is None:
        raise InputError(f"Label Studio has no project '{title}'; run `nlu-mlflow inbox push` first.")
    known = {(a.item_id, a.source, a.source_id) for a in store.annotations()}
    new = []
    for task in client.tasks(project.id):
        new += _new_annotations(store, task, known)
    _refuse_bad(new, where.schema)
    store.add_annotations(new)
    return write_pending(store, where, "Label Studio", len(new), sum(a.skipped for a in new))


def _new_annotations(store: InboxStore, task: dict, known: set) -> list[Annotation]:
    item_id = task["data"].get("item_id")
    if item_id is None or store.item(int(item_id)) is None:
        return []  # not the inbox's task, or its sender was forgotten
    found = []
    for row in task.get("annotations") or []:
        if (int(item_id), "label-studio", str(row["id"])) in known:
            continue
        example = labeling.example_of(
            task["data"][labeling.TEXT], row.get("result") or [], row.get("was_cancelled")
        )
        found.append(_annotation(int(item_id), example, _annotator(row), "label-studio", str(row["id"])))
    return found


def _annotator(row: dict) -> str | None:
    who = row.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or f"label-studio user {who.get('id')}")
    return f"label-studio user {who}" if who is not None else None


def _annotation(
    item_id: int, example: labeling.Example, annotator, source: str, source_id: str
) -> Annotation:
    return Annotation(
        item_id, example.text, example.intent, list(example.entities), annotator,
        source=source, source_id=source_id, skipped=example.skipped,
    )  # fmt: skip


def _refuse_bad(annotations: list[Annotation], schema: labeling.Schema) -> None:
    problems = []
    for a in annotations:
        example = labeling.Example(a.text, a.intent, tuple(a.entities), a.skipped)
        problems += labeling.problems(example, schema, f"inbox item {a.item_id} ({a.source} {a.source_id})")
    if problems:
        raise InputError(problems + ["nothing was written; fix the above and pull again."])


def write_pending(store: InboxStore, where: Target, source: str, new: int = 0, skipped: int = 0) -> Pulled:
    """Write the inbox's unwritten annotations into one new file (or a commit on the git branch)."""
    recovered = _recover_written(store, where)
    latest, superseded = _latest_per_item(store.unwritten_annotations())
    existing = _training_intents(where.nlu)
    conflicts, duplicates, kept = [], defaultdict(list), []
    for a in latest:
        have = existing.get(normalise(a.text), {})
        other = {intent: file for intent, file in have.items() if intent != a.intent}
        if other:
            intent, file = next(iter(other.items()))
            conflicts.append(
                f"inbox item {a.item_id}: {a.text!r} is labelled '{intent}' in {file}, annotated '{a.intent}'"
            )
        elif a.intent in have:
            duplicates[have[a.intent]].append(a.id)
        else:
            kept.append(a)
    for file, ids in duplicates.items():
        store.mark_written(ids, file)
    tested = [a for a in kept if replay_rules.in_live_test(normalise(a.text), where.live_test_share)]
    if tested and where.live_test_folder is not None:
        kept = [a for a in kept if a not in tested]
        _write_and_mark(
            store, dataclasses.replace(where, folder=where.live_test_folder), tested, superseded, source
        )
    path = _write_and_mark(store, where, kept, superseded, source)
    return Pulled(new, skipped, len(kept), str(path) if path else None, recovered, conflicts, len(tested))


def _write_and_mark(store: InboxStore, where: Target, annotations: list[Annotation], superseded, source: str):
    """One file of ``annotations`` (none when there are none), then the annotations marked written into it."""
    if not annotations:
        return None
    path = _write(where, annotations, source)
    store.mark_written(
        [_stored_id(a) for a in annotations]
        + [s for a in annotations for s in superseded.get(a.item_id, [])],
        path,
    )
    return path


def _recover_written(store: InboxStore, where: Target) -> int:
    on_disk = annotated.recorded(where.folder, where.git_branch)
    if where.live_test_folder is not None:
        on_disk |= annotated.recorded(where.live_test_folder, where.git_branch)
    by_file = defaultdict(list)
    for a in store.unwritten_annotations():
        if a.id in on_disk:
            by_file[on_disk[a.id]].append(a.id)
    for file, ids in by_file.items():
        store.mark_written(ids, file)
    return sum(len(ids) for ids in by_file.values())


def _latest_per_item(annotations: list[Annotation]) -> tuple[list[Annotation], dict[int, list[int]]]:
    """One annotation per item, the newest; the older ones of the same item are superseded by it."""
    by_item: dict[int, list[Annotation]] = defaultdict(list)
    for a in annotations:
        by_item[a.item_id].append(a)
    newest = {
        item: max(group, key=lambda a: (a.annotated_at, _stored_id(a))) for item, group in by_item.items()
    }
    superseded = {
        item: [_stored_id(a) for a in group if a.id != newest[item].id] for item, group in by_item.items()
    }
    return sorted(newest.values(), key=_stored_id), superseded


def _stored_id(annotation: Annotation) -> int:
    """The inbox row id of an annotation read back from the inbox (set by the store on insert)."""
    assert annotation.id is not None, "an annotation read from the inbox has its row id"
    return annotation.id


def _training_intents(nlu) -> dict[str, dict[str, str]]:
    """normalised text -> {intent (full retrieval intent) -> file} of today's training data."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for file, part in nlu.parts:
        for message in part.intent_examples:
            intent = message.get("intent_response_key") or message.get("intent")
            found[normalise(message.get("text") or "")].setdefault(intent, file)
    return found


def _write(where: Target, annotations: list[Annotation], source: str) -> str:
    from nlu_mlflow.rasa.labeling import nlu_yaml

    now = datetime.datetime.now(datetime.timezone.utc)
    examples = [labeling.Example(a.text, a.intent, tuple(a.entities)) for a in annotations]
    text = annotated.header(
        f"{now:%Y-%m-%dT%H:%M:%SZ}", source, [_stored_id(a) for a in annotations]
    ) + nlu_yaml(examples)
    path = where.folder / f"live-{now:%Y%m%d-%H%M%S}-{annotations[0].id}.yml"
    if where.git_branch is None:
        return str(annotated.write_atomically(path, text))
    message = f"nlu-mlflow inbox: {len(annotations)} annotated live message(s) from {source}"
    commit = annotated.commit_on_branch(path, text, where.git_branch, message)
    return f"{where.git_branch}:{path.name} (commit {commit[:12]})"
