"""What the config's run records of its study: params, counts, the trials' table and Optuna's plots."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nlu_mlflow import constants as c
from nlu_mlflow.decide import search_space
from nlu_mlflow.decide.redact import redact_url
from nlu_mlflow.tracking import runs
from nlu_mlflow.workflow.tune.study import DEFAULT_ATTR, StudySpec

logger = logging.getLogger("nlu_mlflow")


def log_study(study: optuna.Study, spec: StudySpec, config, storage_url: str, seconds: float, work: Path):
    trials = study.get_trials(deepcopy=False)
    best = study.best_trial
    runs.log_params(_params(trials, spec, storage_url, best))
    runs.set_tags({c.TAG_STUDY: spec.study})
    default = next(
        (t for t in trials if t.user_attrs.get(DEFAULT_ATTR) and t.state == TrialState.COMPLETE), None
    )
    counts = {
        s.name.lower(): sum(t.state == s for t in trials)
        for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    runs.log_metrics(
        {
            c.SEARCH_BEST_SCORE: best.value,
            c.SEARCH_DEFAULT_SCORE: default.value if default else None,
            c.SEARCH_EPOCHS_TRAINED: sum(t.user_attrs.get(c.EPOCHS_TRAINED, 0) for t in trials),
            c.SEARCH_SECONDS: seconds,
            **{f"{c.SEARCH_TRIALS_PREFIX}{state}": n for state, n in counts.items()},
        }
    )
    runs.log_json(search_space.records(list(config.search)), f"{c.ARTIFACT_SEARCH}/space.json")
    frame = study.trials_dataframe()
    runs.log_artifact(_saved(frame, work / "trials.csv"), c.ARTIFACT_SEARCH)
    for png in plots(study, bool(spec.pruning and spec.min_epochs), work):
        runs.log_artifact(png, c.ARTIFACT_SEARCH)


def _params(trials: list, spec: StudySpec, storage_url: str, best) -> dict:
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return {
        "search.study": spec.study,
        "search.storage": redact_url(storage_url),
        "search.trials": spec.trials,
        "search.trial_numbers": ",".join(str(t.number) for t in finished),
        "search.validation_fraction": spec.validation_fraction,
        "search.pruning": spec.pruning,
        "search.min_epochs": spec.min_epochs,
        "search.best_trial": best.number,
        **{f"search.best.{name}": value for name, value in best.params.items()},
    }


def _saved(frame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def plots(study: optuna.Study, pruning: bool, work: Path) -> list[Path]:
    """Optuna's own matplotlib plots of the study (plotly is not installed): the history, the intermediate
    values when trials were pruned, the parameters' importances when there are several. A plot that cannot
    be drawn (too few trials) is left out."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    wanted: dict[str, Callable[[optuna.Study], Any]] = {  # each returns an Axes or an array of them
        "optimization_history": optuna_plots.plot_optimization_history
    }
    if pruning:
        wanted["intermediate_values"] = optuna_plots.plot_intermediate_values
    if len(study.best_trial.params) > 1:
        wanted["param_importances"] = optuna_plots.plot_param_importances
    drawn = []
    for name, draw in wanted.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ExperimentalWarning
                axes = draw(study)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.savefig(work / f"{name}.png", bbox_inches="tight", dpi=100)
            plt.close(figure)
            drawn.append(work / f"{name}.png")
        except Exception as error:  # a plot is an extra: the study's table has every number
            logger.warning("  search plot %s not drawn: %s", name, error)
    return drawn
