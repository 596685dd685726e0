"""Archives in the work dir: removed only when Rasa cannot be reading them."""

from __future__ import annotations

import os

from nlu_mlflow.receiver.deploy import KEEP_ARCHIVES, loading, prune


def archives(work_dir, count: int):
    """``count`` deployed archives, oldest first (mtimes one minute apart)."""
    paths = []
    for number in range(1, count + 1):
        path = work_dir / f"rasa-nlu-v{number}.tar.gz"
        path.write_bytes(b"archive")
        os.utime(path, (1_700_000_000 + 60 * number,) * 2)
        paths.append(path)
    return paths


def left(work_dir) -> list[str]:
    return sorted(p.name for p in work_dir.glob("*.tar.gz"))


def test_pruning_keeps_the_newest_archives(tmp_path):
    paths = archives(tmp_path, KEEP_ARCHIVES + 2)
    prune(tmp_path, live=paths[-1])
    assert left(tmp_path) == sorted(p.name for p in paths[-KEEP_ARCHIVES:])


def test_pruning_never_removes_the_live_archive_even_when_it_is_old(tmp_path):
    paths = archives(tmp_path, KEEP_ARCHIVES + 2)  # e.g. a rollback made v1 live again
    prune(tmp_path, live=paths[0])
    assert paths[0].exists() and not paths[1].exists()


def test_pruning_never_removes_an_archive_being_loaded_also_by_another_process(tmp_path):
    paths = archives(tmp_path, KEEP_ARCHIVES + 2)
    with loading(paths[1]):  # e.g. `sync-rasa` loading v2 beside the receiver
        prune(tmp_path, live=paths[-1])
        assert paths[1].exists() and not paths[0].exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".loading")] == []
