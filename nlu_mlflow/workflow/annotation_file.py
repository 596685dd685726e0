"""Annotation without Label Studio: ``inbox export`` writes the top items to a CSV or YAML file a person
edits (the intent, the text with entities in Rasa's markup, ``skip``), ``inbox import`` reads it back into
the inbox and writes the project's YAML as ``inbox pull`` does (``annotate.write_pending``).

A row is identified by its item id and its content: importing the same file twice adds nothing; a row that is
edited and imported again is a new annotation that supersedes the older one (if that is not written yet).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import yaml

from nlu_mlflow.decide import labeling
from nlu_mlflow.errors import InputError
from nlu_mlflow.live import annotated
from nlu_mlflow.live.inbox_store import Annotation, InboxStore
from nlu_mlflow.workflow import annotate

FORMATS = ("csv", "yaml")
COLUMNS = ("item_id", "intent", "text", "skip", "reasons", "count")
SKIP_WORDS = {"yes", "y", "true", "1", "x", "skip"}


def export(store: InboxStore, schema: labeling.Schema, path: Path, fmt: str, limit: int) -> int:
    """The ``limit`` top open items, each with its served parse as the suggestion; returns the row count."""
    from nlu_mlflow.rasa.labeling import markup

    rows = []
    for item in store.ranked(limit):
        parse = annotate.served_parse(item)
        example = labeling.example_of(item.text, labeling.prediction(parse, schema, "").result)
        rows.append({
            "item_id": item.id, "intent": example.intent or "", "text": markup(example), "skip": "",
            "reasons": ", ".join(item.reasons), "count": item.count,
        })  # fmt: skip
    annotated.write_atomically(path, _csv(rows) if fmt == "csv" else _yaml(rows))
    return len(rows)


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _yaml(rows: list[dict]) -> str:
    note = (
        "# Edit `intent` and `text` (entities in Rasa's markup: [large](size)); set `skip: yes` to leave a "
        "message out.\n# Then: nlu-mlflow inbox import THIS_FILE --project ...\n"
    )
    return note + yaml.safe_dump({"items": rows}, sort_keys=False, allow_unicode=True, width=1000)


def import_file(
    store: InboxStore, where: annotate.Target, path: Path, annotator: str | None
) -> annotate.Pulled:
    """Read an edited export file; refuse it whole if a row names what the domain lacks."""
    from nlu_mlflow.rasa.labeling import read_markup

    found, problems = [], []
    for n, row in enumerate(_rows(path), start=1):
        item_id, at = _item_id(row, path, n), f"{path}: row {n}"
        if store.item(item_id) is None:
            problems.append(f"{at}: inbox item {item_id} is not in the inbox (forgotten?); remove the row.")
            continue
        skip = str(row.get("skip") or "").strip().lower() in SKIP_WORDS
        text, entities = read_markup(str(row.get("text") or ""))
        example = labeling.Example(text, str(row.get("intent") or "").strip() or None, tuple(entities), skip)
        problems += labeling.problems(example, where.schema, at)
        digest = hashlib.sha256(
            json.dumps([item_id, example.text, example.intent, entities, skip]).encode()
        ).hexdigest()
        found.append(Annotation(item_id, text, example.intent, list(entities), annotator, source="file",
                                source_id=f"{path.name}#{digest[:16]}", skipped=skip))  # fmt: skip
    if problems:
        raise InputError(problems + ["nothing was imported; fix the file and import it again."])
    known = {(a.item_id, a.source, a.source_id) for a in store.annotations()}
    new = [a for a in found if (a.item_id, a.source, a.source_id) not in known]
    store.add_annotations(new)
    return annotate.write_pending(store, where, f"file {path.name}", len(new), sum(a.skipped for a in new))


def _rows(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"{path}: cannot be read ({type(error).__name__}); give a file `inbox export` wrote."
        ) from None
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise InputError(f"{path}: not valid YAML; fix the syntax (or export again).") from None
    rows = document.get("items") if isinstance(document, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"{path}: `items:` must be a list of rows with item_id, intent, text; export again.")
    return rows


def _item_id(row: dict, path: Path, n: int) -> int:
    try:
        return int(str(row.get("item_id")).strip())
    except ValueError:
        raise InputError(
            f"{path}: row {n}: item_id {row.get('item_id')!r} is not a number; keep the exported id."
        ) from None
