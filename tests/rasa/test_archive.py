"""Every archive is checked before Rasa loads it, whoever wrote it (issue 13 item 16), and says what kind
of model it holds."""

import io
import tarfile

import pytest

from nlu_mlflow.decide.model_kind import KIND_FULL, KIND_NLU
from nlu_mlflow.rasa import archive, evaluation


def test_an_archive_with_a_member_outside_its_folder_is_refused_before_rasa_reads_it(tmp_path):
    archive = tmp_path / "production.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        payload = b"written outside"
        member = tarfile.TarInfo("../../escaped.txt")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))
    with pytest.raises(ValueError, match="leaves the archive's folder"):
        evaluation.load_processor(archive)  # the loader the champion's re-scoring uses


def archive_with(path, metadata: bytes | None):
    """A .tar.gz holding ``metadata.json`` with these bytes (None: no metadata.json)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ([("metadata.json", metadata)] if metadata is not None else []) + [("x", b"x")]:
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return path


def test_training_types_are_the_values_rasa_writes():
    from rasa.shared.data import TrainingType

    assert {t.name: t.value for t in TrainingType} == {
        "NLU": archive.TRAINING_TYPE_NLU,
        "CORE": archive.TRAINING_TYPE_CORE,
        "BOTH": archive.TRAINING_TYPE_BOTH,
        "END_TO_END": archive.TRAINING_TYPE_END_TO_END,
    }


@pytest.mark.parametrize(
    ("metadata", "kind", "model_id"),
    [
        (b'{"training_type": 1, "model_id": "a"}', KIND_NLU, "a"),
        (b'{"training_type": 3, "model_id": "b"}', KIND_FULL, "b"),
        (b'{"training_type": 2}', KIND_FULL, None),
        (b'{"training_type": 4}', KIND_FULL, None),
        (b'{"training_type": 9}', None, None),  # a type this Rasa does not write
        (b"not json", None, None),
        (None, None, None),  # no metadata.json: not a Rasa 3 archive
    ],
)
def test_the_kind_and_id_come_from_the_metadata_rasa_wrote(tmp_path, metadata, kind, model_id):
    path = archive_with(tmp_path / "m.tar.gz", metadata)
    assert (archive.archive_kind(path), archive.archive_model_id(path)) == (kind, model_id)


def test_an_unreadable_file_has_no_metadata(tmp_path):
    path = tmp_path / "m.tar.gz"
    path.write_bytes(b"not a tar")
    assert archive.archive_metadata(path) == {}
