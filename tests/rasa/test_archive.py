"""Every archive is checked before Rasa loads it, whoever wrote it (issue 13 item 16)."""

import io
import tarfile

import pytest

from nlu_mlflow.rasa import evaluation


def test_an_archive_with_a_member_outside_its_folder_is_refused_before_rasa_reads_it(tmp_path):
    archive = tmp_path / "production.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        payload = b"written outside"
        member = tarfile.TarInfo("../../escaped.txt")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))
    with pytest.raises(ValueError, match="leaves the archive's folder"):
        evaluation.load_processor(archive)  # the loader the champion's re-scoring uses
