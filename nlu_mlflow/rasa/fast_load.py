"""Load Rasa model archives for prediction without the training Rasa repeats at load time.

Two loads in Rasa 3.6 train again before they can predict:

- ``RasaModel.load`` (DIET, ResponseSelector) builds the network's weights by running ``model.fit`` on
one example, which traces the whole training step (loss, gradients, optimizer) only to throw those
weights away and read the saved ones (about 20 of the 26 seconds a DIET load takes on
rasa-demo-flat). For prediction only the inference graph is needed: here the saved weights are
attached first (TensorFlow restores each variable from the checkpoint as it is created) and the
one-example prediction Rasa runs anyway creates and restores them; ``assert_existing_objects_matched``
checks that every variable the prediction graph uses came from the checkpoint. Fine-tuning loads,
and loads without a prediction example, go through Rasa's method unchanged.
- ``CRFEntityExtractor.load`` stores no model, only its training tokens, and retrains the CRF from
them on every load (about 4 seconds on rasa-demo-flat). CRF training is deterministic, so its result
is kept, keyed by a digest of the tokens, the config and the tag order: a load right after training
in the same process (what the workflow does for each candidate) reuses the CRF training just built.

The Rasa internals used here are listed in ``internals`` (which pins them); tests/rasa/test_fast_load.py
pins the predictions of both loads against Rasa's own.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CRF_MEMO_SIZE = 4  # CRFs kept (a few MB each): one per pipeline with a CRFEntityExtractor is enough

_lock = threading.RLock()
_depth = 0  # how many enabled() blocks are open
_rasa_load = None  # Rasa's functions while enabled() has replaced them
_rasa_train_model = None
_crf_memo: dict[str, object] = {}


def _predict_only_load(
    cls, model_file_name, model_data_example, predict_data_example=None, finetune_mode=False, *args, **kwargs
):
    import tensorflow as tf
    from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY

    if finetune_mode or predict_data_example is None:
        return _rasa_load(
            cls, model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs
        )
    config = kwargs.get("config", {})
    model = cls(*args, **kwargs)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
        run_eagerly=config.get(RUN_EAGERLY),
    )
    status = model.load_weights(model_file_name)  # deferred: each variable is restored when created
    model.run_inference(predict_data_example)  # creates the prediction graph's variables
    status.assert_existing_objects_matched().expect_partial()  # the optimizer's slots are not needed
    return model


def _crf_key(dataset, config: dict, crf_order: list) -> str:
    tokens = [[token.to_dict() for token in sentence] for sentence in dataset]
    blob = json.dumps([tokens, config, crf_order], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _memo_train_model(cls, df_train, config, crf_order):
    key = _crf_key(df_train, config, crf_order)
    taggers = _crf_memo.get(key)
    if taggers is None:
        taggers = _rasa_train_model(cls, df_train, config, crf_order)
        _crf_memo[key] = taggers
        while len(_crf_memo) > CRF_MEMO_SIZE:
            _crf_memo.pop(next(iter(_crf_memo)))
    return taggers


@contextmanager
def enabled() -> Iterator[None]:
    """Within the block, Rasa's models load for prediction only and CRFs are trained once per data
    (see the module docstring). The patches are process-wide, so one thread at a time holds a block (others
    wait); blocks nest, and the patches are removed when the outermost one ends."""
    global _rasa_load, _rasa_train_model, _depth
    from rasa.nlu.extractors.crf_entity_extractor import CRFEntityExtractor
    from rasa.utils.tensorflow.models import RasaModel

    from nlu_mlflow.rasa import internals

    if not internals.verified():  # another Rasa: its own loading, unpatched
        yield
        return

    with _lock:
        if _depth == 0:
            _rasa_load = RasaModel.__dict__["load"].__func__
            _rasa_train_model = CRFEntityExtractor.__dict__["train_model"].__func__
            RasaModel.load = classmethod(_predict_only_load)
            CRFEntityExtractor.train_model = classmethod(_memo_train_model)
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0:
                RasaModel.load = classmethod(_rasa_load)
                CRFEntityExtractor.train_model = classmethod(_rasa_train_model)
                _crf_memo.clear()


def load_agent(archive: Path):
    """``Agent.load(archive)``, loaded for prediction only; the archive is checked first
    (``archive.check_archive``), whoever wrote it: a candidate, the production model, a download."""
    from rasa.core.agent import Agent

    from nlu_mlflow.rasa import runtime
    from nlu_mlflow.rasa.archive import check_archive

    check_archive(Path(archive))
    runtime.explain_entityless_crf()

    with enabled():
        return Agent.load(model_path=str(archive))


def load_processor(archive: Path):
    """``Agent.load(archive).processor``, loaded for prediction only (see ``load_agent``)."""
    return load_agent(archive).processor
