"""Hyperparameter search: an Optuna study per config with a `search:` section, each trial a nested MLflow run.

Inside a config's run the workflow calls ``best_config`` (the hook in ``candidates.run_candidate``): the
training data is split (seeded, stratified) into the part the trials train on and the validation part they
are scored on, never the test set; both are logged as artifacts of the config's run. A study in the shared
Optuna storage (``--study-storage``) then runs ``--trials`` trials: TPE seeded with the run's seed, the
config's own values tried first, and with ``--pruning`` successive halving on epochs (every trial trains
``first`` epochs, the best third of those 3x as many, and so on up to its full epochs; each rung is trained
from scratch and scored on the validation split, ``trial.report`` / ``trial.should_prune``). The best trial's
values make the config that the workflow then trains on all the training data and tests like any other.

``tune-worker`` (``join``) joins a study from another machine: what a trial needs (the config, the run the
trials nest under, the data's artifact URIs and digests, seed, epoch cap, metric, the tracking URI) is in
the study's user attributes (``StudySpec``). Optuna is imported here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nlu_mlflow import constants as c
from nlu_mlflow.decide import search_space, validation
from nlu_mlflow.decide.redact import redact_url
from nlu_mlflow.errors import InputError
from nlu_mlflow.rasa import fast_load, pipelines, runtime, scoring, training
from nlu_mlflow.rasa.data import NluData, load_nlu, split
from nlu_mlflow.tracking import runs

logger = logging.getLogger("nlu_mlflow")

STORAGE_FILE = "optuna.db"  # the default storage, beside the local MLflow store
SPEC_ATTR = "nlu_mlflow.spec"  # the study's user attribute holding the StudySpec
DEFAULT_ATTR = "nlu_mlflow.default"  # the trial that tries the config's own values
SURPLUS_ATTR = "nlu_mlflow.surplus"  # a trial started after the study was full: failed, never run
HEARTBEAT_S = 30  # a running trial proves its worker alive this often ...
GRACE_S = 180  # ... and is failed after this long without (optuna.storages.fail_stale_trials)
POLL_S = 5.0
# what counts towards --trials: a trial that failed was tried; one running elsewhere will finish
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.FAIL)


class SearchError(RuntimeError):
    """A study could not produce a config (no trial completed); the message names the study and why."""


@dataclass(frozen=True)
class StudySpec:
    """What any worker needs to run a trial of a study; stored in the study's user attributes."""

    study: str
    config_file: str  # the config's file name (its stem names the runs)
    config_text: str  # the effective config with its `search:` section (``PipelineConfig.text``)
    parent_run_id: str  # the config's run, which every trial's run nests under
    tracking_uri: str  # without credentials (workers log in through MLFLOW_TRACKING_USERNAME/PASSWORD)
    train_uri: str  # artifact URIs of the exact data the trials train on and are scored on
    validation_uri: str
    train_digest: str
    validation_digest: str
    seed: int
    validation_fraction: float
    epochs_cap: int | None
    metric: str
    trials: int
    pruning: bool
    min_epochs: int | None  # the first rung (None: no pruning, or nothing trains in epochs)

    def config(self) -> pipelines.PipelineConfig:
        return pipelines.parse(self.config_text, Path(self.config_file), self.epochs_cap, self.seed)

    @property
    def metric_name(self) -> str:
        return c.VALIDATION_PREFIX + self.metric


@dataclass(frozen=True)
class TrialData:
    train_yaml: Path  # the part of the training data the trials train on, as Rasa YAML
    validation: NluData
    work: Path


@dataclass(frozen=True)
class Outcome:
    score: float
    epochs: int  # epochs trained over all rungs
    seconds: float
    pruned: bool


@dataclass(frozen=True)
class WorkerResult:
    study: str
    ran: int  # trials this worker ran
    finished: int  # trials of the study that completed or were pruned
    wanted: int
    best: optuna.trial.FrozenTrial | None
    metric: str

    def line(self) -> str:
        best = (
            f"best so far: trial {self.best.number}, {self.metric} {self.best.value:.4f}"
            if self.best
            else "no trial completed yet"
        )
        return f"ran {self.ran} trial(s) of study {self.study}; {self.finished} of {self.wanted} done; {best}"


# --- the workflow's hook --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class StudyResult:
    study: optuna.Study
    spec: StudySpec
    config: pipelines.PipelineConfig  # the best trial's
    best: optuna.trial.FrozenTrial
    seconds: float

    def trials(self, *states: TrialState) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states or None)

    @property
    def epochs_trained(self) -> int:
        return sum(t.user_attrs.get(c.EPOCHS_TRAINED, 0) for t in self.trials())


def best_config(
    config: pipelines.PipelineConfig, train: NluData, settings, work: Path
) -> pipelines.PipelineConfig:
    """The workflow's hook: ``config`` as written without ``settings.trials`` or a `search:` section; else
    the best trial's config of a study run inside the active run (the config's), trials nested under it."""
    if not settings.trials or not config.search:
        return config
    return search(config, train, settings, work / "search").config


def search(config, train: NluData, settings, work: Path, first: list[dict] | None = None) -> StudyResult:
    """Run ``config``'s study (``settings.trials`` trials, with every worker that joins) inside the active
    run and log it there. The trials try ``first`` first (default: the config's own values)."""
    started = time.perf_counter()
    study, spec, data = start(config, train, settings, work, first)
    with fast_load.enabled():
        run_trials(study, spec, config, data)
    _wait_for_workers(study)
    best = _best(study, spec, config)
    seconds = time.perf_counter() - started
    _log_study(study, spec, config, storage_url_of(settings), seconds, work)
    logger.info(
        "  %s: best of %d trials is trial %d, %s %.4f: %s",
        config.name,
        spec.trials,
        best.number,
        spec.metric_name,
        best.value,
        best.params,
    )
    return StudyResult(study, spec, config.with_values(best.params), best, seconds)


def start(
    config, train: NluData, settings, work: Path, first: list[dict] | None = None
) -> tuple[optuna.Study, StudySpec, TrialData]:
    """Split the training data and log both parts on the active run, then create the study in the shared
    storage with everything a worker needs: from here on ``tune-worker`` can join it."""
    spec, data = _publish(config, train, settings, work)
    storage_url = storage_url_of(settings)
    study = _create_study(spec, config, storage(storage_url), first)
    logger.info(
        "  %s: searching %d trials (study %s); add workers with: nlu-mlflow tune-worker --study %s "
        "--study-storage %s",
        config.name,
        spec.trials,
        spec.study,
        spec.study,
        redact_url(storage_url),
    )
    return study, spec, data


def input_problems(settings, train: NluData, configs: list[pipelines.PipelineConfig]) -> list[str]:
    """What stops a search before anything runs: the options together, the validation split, the storage."""
    if not settings.trials:
        return []
    if settings.cv_folds:
        return [
            "--trials with --cv-folds: cross-validation scores the configs as written; drop one of the two."
        ]
    if not any(x.search for x in configs):
        logger.warning("--trials %d: no config has a `search:` section; nothing is searched", settings.trials)
        return []
    try:
        fit, held = _split(train, settings)
        storage(storage_url_of(settings))
    except InputError as error:
        return error.problems
    return validation.check_test_data(fit.view, held.view)


def storage_url_of(settings) -> str:
    return settings.study_storage or f"sqlite:///{(Path(settings.project_dir) / STORAGE_FILE).resolve()}"


def storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's database storage at ``url`` (SQLite for one machine, PostgreSQL for several), with
    heartbeats so a trial whose worker died is failed; a URL that does not open is an InputError."""
    try:
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    except Exception as error:  # SQLAlchemy: bad URL, unknown driver, database down or refusing
        raise InputError(
            f"--study-storage {redact_url(url)}: cannot open it ({type(error).__name__}); give a SQLAlchemy "
            "URL such as sqlite:///optuna.db or postgresql+psycopg2://user@host/optuna and check the "
            "database is reachable."
        ) from None


def _split(train: NluData, settings) -> tuple[NluData, NluData]:
    fraction, option = settings.validation_fraction, "--validation-fraction"
    return split(train, fraction, settings.seed, option, ("search train", "validation"))


def _publish(config, train: NluData, settings, work: Path) -> tuple[StudySpec, TrialData]:
    """Split the training data, log both parts on the config's run and describe the study for workers."""
    fit, held = _split(train, settings)
    work.mkdir(parents=True, exist_ok=True)
    files = {
        "train.yml": fit.to_yaml(work / "train.yml"),
        "validation.yml": held.to_yaml(work / "validation.yml"),
    }
    for path in files.values():
        runs.log_artifact(path, c.ARTIFACT_SEARCH)
    run_id = runs.active_run_id()
    top = max(
        filter(None, [config.max_epochs(), search_space.largest(list(config.search), "epochs")]), default=0
    )
    spec = StudySpec(
        study=f"{config.name}-{run_id}",
        config_file=config.path.name,
        config_text=config.text(),
        parent_run_id=run_id,
        tracking_uri=runs.tracking_uri(),
        train_uri=runs.artifact_uri(f"{c.ARTIFACT_SEARCH}/train.yml"),
        validation_uri=runs.artifact_uri(f"{c.ARTIFACT_SEARCH}/validation.yml"),
        train_digest=fit.digest,
        validation_digest=held.digest,
        seed=settings.seed,
        validation_fraction=settings.validation_fraction,
        epochs_cap=settings.epochs,
        metric=settings.primary_metric,
        trials=settings.trials,
        pruning=settings.pruning,
        min_epochs=search_space.min_epochs(int(top)) if settings.pruning and top else None,
    )
    return spec, TrialData(files["train.yml"], held, work)


# --- studies --------------------------------------------------------------------------------------------


def sampler(seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """TPE, seeded; a third of the trials (3 to 10) sample at random first; ``constant_liar`` keeps
    parallel workers from sampling the same point."""
    startup = max(3, min(10, trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    if not (spec.pruning and spec.min_epochs):
        return optuna.pruners.NopPruner()
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=spec.min_epochs, reduction_factor=search_space.REDUCTION_FACTOR
    )


def _create_study(spec: StudySpec, config, store, first: list[dict] | None = None) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress lines say what happened
    study = optuna.create_study(
        study_name=spec.study,
        storage=store,
        sampler=sampler(spec.seed, spec.trials),
        pruner=pruner(spec),
        direction="maximize",
    )
    study.set_user_attr(SPEC_ATTR, dataclasses.asdict(spec))
    for values in first or []:
        study.enqueue_trial(values)
    if first is not None:
        return study
    own = config.current_values()
    if all(search_space.contains(d, own[d.name]) for d in config.search):
        study.enqueue_trial(own, user_attrs={DEFAULT_ATTR: True})
    else:
        logger.info(
            "  %s: the config's own values lie outside the search space; not tried first", config.name
        )
    return study


def _counted(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def run_trials(study: optuna.Study, spec: StudySpec, config, data: TrialData) -> int:
    """Run trials in this process until the study holds ``spec.trials`` (counting every worker's);
    returns how many ran here. A trial that raises is recorded as failed and the next one starts."""
    if _counted(study) >= spec.trials:
        return 0
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # "retracing" warnings: trials retrain alike
    ran = []

    def objective(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        return _objective(trial, spec, config, data)

    study.optimize(
        objective,
        callbacks=[optuna.study.MaxTrialsCallback(spec.trials, states=COUNTED)],
        catch=(Exception,),
        gc_after_trial=True,
    )
    return len(ran)


def _objective(trial: optuna.Trial, spec: StudySpec, config, data: TrialData) -> float:
    _refuse_surplus(trial, spec)
    values = {d.name: _suggest(trial, d) for d in config.search}
    tags = {c.TAG_CONFIG: config.name, c.TAG_STUDY: spec.study, c.TAG_TRIAL: str(trial.number)}
    with runs.trial_run(spec.parent_run_id, f"{config.name}-trial-{trial.number}", tags) as run_id:
        trial.set_user_attr("mlflow_run_id", run_id)
        runs.log_params(values)
        outcome = _train_in_rungs(
            trial, config.with_values(values), spec, data.work / f"trial-{trial.number}", data
        )
        runs.log_metrics({c.EPOCHS_TRAINED: outcome.epochs, c.TRAIN_SECONDS: outcome.seconds})
        runs.set_tags(
            {c.TAG_TRIAL_STATE: (TrialState.PRUNED if outcome.pruned else TrialState.COMPLETE).name}
        )
    trial.set_user_attr(c.EPOCHS_TRAINED, outcome.epochs)
    logger.info(
        "    trial %d: %s %.4f after %d epochs%s",
        trial.number,
        spec.metric_name,
        outcome.score,
        outcome.epochs,
        ", pruned" if outcome.pruned else "",
    )
    if outcome.pruned:
        raise optuna.TrialPruned(f"pruned after {outcome.epochs} epochs")
    return outcome.score


def _refuse_surplus(trial: optuna.Trial, spec: StudySpec) -> None:
    """Two workers may start a trial at once when one is missing: the later one stops before any work."""
    earlier = [t for t in trial.study.get_trials(deepcopy=False, states=COUNTED) if t.number < trial.number]
    if len(earlier) >= spec.trials:
        trial.set_user_attr(SURPLUS_ATTR, True)
        trial.study.stop()
        raise SearchError(f"trial {trial.number} is beyond the study's {spec.trials} trials; not run")


def _suggest(trial: optuna.Trial, d: search_space.Dimension) -> object:
    if d.kind == "choice":
        return trial.suggest_categorical(d.name, list(d.choices))
    if d.kind == "int":
        return trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log)
    return trial.suggest_float(d.name, float(d.low), float(d.high), log=d.log)


def _train_in_rungs(trial: optuna.Trial, config, spec: StudySpec, work: Path, data: TrialData) -> Outcome:
    """Train and score ``config`` at each rung's epochs (one rung without pruning), reporting every score."""
    steps = search_space.rungs(config.max_epochs(), spec.min_epochs if spec.pruning else None)
    epochs, seconds = 0, 0.0
    for i, step in enumerate(steps):
        score, took = _train_and_score(config.with_epoch_cap(step), spec.metric, data, work)
        epochs, seconds = epochs + (step or 0), seconds + took
        trial.report(score, step or 0)
        runs.log_metric_at(spec.metric_name, score, step or 0)
        if i < len(steps) - 1 and trial.should_prune():
            return Outcome(score, epochs, seconds, pruned=True)
    return Outcome(score, epochs, seconds, pruned=False)


def _train_and_score(config, metric: str, data: TrialData, work: Path) -> tuple[float, float]:
    try:
        trained = training.train(config, data.train_yaml, work)
        extractors = pipelines.entity_extractors(config)
        metrics = scoring.validation_metrics(trained.archive, data.validation, extractors, work / "reports")
    finally:
        shutil.rmtree(work, ignore_errors=True)  # archives of every rung of every trial add up
    return metrics.get(metric, float("nan")), trained.seconds


def _wait_for_workers(study: optuna.Study) -> None:
    """Trials other workers still run finish (or are failed once their heartbeat stops) before the best is
    picked."""
    while study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        optuna.storages.fail_stale_trials(study)
        time.sleep(POLL_S)


def _best(study: optuna.Study, spec: StudySpec, config) -> optuna.trial.FrozenTrial:
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        why = failed[0].system_attrs.get("fail_reason", "see the log") if failed else "every trial was pruned"
        raise SearchError(
            f"{config.path}: none of the {spec.trials} trials of study {spec.study} completed ({why}); "
            "check the `search:` ranges against the component's options."
        )
    return study.best_trial


# --- what the config's run records of its study ----------------------------------------------------------


def _log_study(study: optuna.Study, spec: StudySpec, config, storage_url: str, seconds: float, work: Path):
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    best = study.best_trial
    default = next(
        (t for t in trials if t.user_attrs.get(DEFAULT_ATTR) and t.state == TrialState.COMPLETE), None
    )
    runs.log_params(
        {
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
    )
    runs.set_tags({c.TAG_STUDY: spec.study})
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
            **{f"search_trials_{state}": n for state, n in counts.items()},
        }
    )
    runs.log_json(search_space.records(list(config.search)), f"{c.ARTIFACT_SEARCH}/space.json")
    frame = study.trials_dataframe()
    runs.log_artifact(_saved(frame, work / "trials.csv"), c.ARTIFACT_SEARCH)
    for png in plots(study, bool(spec.pruning and spec.min_epochs), work):
        runs.log_artifact(png, c.ARTIFACT_SEARCH)


def _saved(frame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def plots(study: optuna.Study, pruning: bool, work: Path) -> list[Path]:
    """Optuna's own matplotlib plots of the study (plotly is not installed): the history, the intermediate
    values when trials were pruned, the parameters' importances when there are several. A plot that cannot
    be drawn (too few trials) is left out."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    wanted = {"optimization_history": optuna_plots.plot_optimization_history}
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


# --- tune-worker ----------------------------------------------------------------------------------------


def join(
    study_name: str, storage_url: str, tracking_uri: str | None = None, seed: int | None = None
) -> WorkerResult:
    """Join study ``study_name`` from anywhere that reaches its storage and the tracking server: run trials
    until the study holds the trials it asked for. Everything else comes from the study itself."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = storage(storage_url)
    spec = _spec_of(study_name, store, storage_url)
    runtime.quiet_rasa()
    runs.bound_http_retries()
    runs.use_tracking_uri(tracking_uri or spec.tracking_uri)
    seed = seed if seed is not None else secrets.randbelow(2**31)
    logger.info("joining study %s (seed %d): %d trials wanted", study_name, seed, spec.trials)
    study = optuna.load_study(
        study_name=study_name, storage=store, sampler=sampler(seed, spec.trials), pruner=pruner(spec)
    )
    with tempfile.TemporaryDirectory(prefix="nlu-mlflow-tune-") as tmp, fast_load.enabled():
        ran = run_trials(study, spec, spec.config(), _download(spec, Path(tmp)))
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return WorkerResult(study_name, ran, len(finished), spec.trials, best, spec.metric_name)


def _spec_of(study_name: str, store, storage_url: str) -> StudySpec:
    try:
        attrs = optuna.load_study(study_name=study_name, storage=store).user_attrs
    except KeyError:
        raise InputError(
            f"--study {study_name}: no such study in {redact_url(storage_url)}; copy the name the workflow "
            "logged (param search.study of the config's run) and its --study-storage."
        ) from None
    if SPEC_ATTR not in attrs:
        raise InputError(
            f"--study {study_name}: this study was not started by `nlu-mlflow run --trials`; "
            "pass the study of a workflow run."
        )
    return StudySpec(**attrs[SPEC_ATTR])


def _download(spec: StudySpec, tmp: Path) -> TrialData:
    """The exact data the study's trials use, from the config's run; checked against the study's digests."""
    parts = []
    for name, uri, digest in (
        ("train", spec.train_uri, spec.train_digest),
        ("validation", spec.validation_uri, spec.validation_digest),
    ):
        path = runs.download_artifact(uri, tmp / name)
        data = load_nlu(path)
        if data.digest != digest:
            raise InputError(
                f"{uri}: its examples differ from those study {spec.study} was started with "
                f"(digest {data.digest}, expected {digest}); start a new study."
            )
        parts.append((path, data))
    (train_yaml, _), (_, held) = parts
    return TrialData(train_yaml, held, tmp / "trials")
