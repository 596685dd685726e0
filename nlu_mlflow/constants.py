"""Names shared across the package: metric names, tag keys, aliases, defaults.

Metric names are fixed so runs line up in the MLflow compare view and can be sorted on in the UI.
"""

# --- headline metrics (one value per candidate run) ---
INTENT_ACCURACY = "intent_accuracy"
INTENT_F1_WEIGHTED = "intent_f1_weighted"
INTENT_F1_MACRO = "intent_f1_macro"
INTENT_PRECISION_WEIGHTED = "intent_precision_weighted"
INTENT_RECALL_WEIGHTED = "intent_recall_weighted"
ENTITY_F1_WEIGHTED = "entity_f1_weighted"
ENTITY_PRECISION_WEIGHTED = "entity_precision_weighted"
ENTITY_RECALL_WEIGHTED = "entity_recall_weighted"
TRAIN_SECONDS = "train_seconds"
EVAL_SECONDS = "eval_seconds"
MODEL_SIZE_MB = "model_size_mb"
CRITICAL_PASS_RATE = "critical_pass_rate"
CRITICAL_FAILURES = "critical_failures"
# response selection (retrieval intents), from Rasa's response_selection_report.json
RESPONSE_SELECTION_ACCURACY = "response_selection_accuracy"
RESPONSE_SELECTION_F1_WEIGHTED = "response_selection_f1_weighted"
# dialogue (test conversations), from Rasa's story evaluation (`rasa test core`)
CORE_CONVERSATION_ACCURACY = "core_conversation_accuracy"  # share of test conversations without an error
CORE_CONVERSATIONS_FAILED = "core_conversations_failed"
CORE_ACTION_F1_WEIGHTED = "core_action_f1_weighted"
CORE_ACTION_ACCURACY = "core_action_accuracy"

KEY_METRICS = (
    INTENT_F1_WEIGHTED,
    INTENT_ACCURACY,
    INTENT_F1_MACRO,
    ENTITY_F1_WEIGHTED,
    RESPONSE_SELECTION_F1_WEIGHTED,
    CORE_CONVERSATION_ACCURACY,
    CORE_ACTION_F1_WEIGHTED,
    CRITICAL_PASS_RATE,
    TRAIN_SECONDS,
    EVAL_SECONDS,
)

# --- per-label metric prefixes: "intent_f1/greet", "entity_f1/product", "extractor_f1/CRFEntityExtractor"
INTENT_F1_PREFIX = "intent_f1/"
ENTITY_F1_PREFIX = "entity_f1/"
EXTRACTOR_F1_PREFIX = "extractor_f1_weighted/"
EXTRACTOR_PRECISION_PREFIX = "extractor_precision_weighted/"
EXTRACTOR_RECALL_PREFIX = "extractor_recall_weighted/"
RESPONSE_SELECTION_F1_PREFIX = (
    "response_selection_f1/"  # per retrieval intent: response_selection_f1/faq/hours
)
CORE_ACTION_F1_PREFIX = "core_action_f1/"

# --- keys inside Rasa's report JSONs (sklearn classification_report output) ---
WEIGHTED_AVG = "weighted avg"
MACRO_AVG = "macro avg"
MICRO_AVG = "micro avg"
CONVERSATION_ACCURACY_KEY = "conversation_accuracy"  # added by Rasa's story evaluation to its report
REPORT_SUMMARY_KEYS = frozenset({WEIGHTED_AVG, MACRO_AVG, MICRO_AVG, "accuracy", CONVERSATION_ACCURACY_KEY})

# --- tags ---
TAG_RASA_VERSION = "rasa_version"
TAG_TENSORFLOW_VERSION = "tensorflow_version"
TAG_MLFLOW_VERSION = "mlflow_version"
TAG_GIT_COMMIT = "git_commit"
TAG_CONFIG = "config"
TAG_ROLE = "nlu_mlflow.role"
ROLE_WORKFLOW = "workflow"
ROLE_CANDIDATE = "candidate"
ROLE_MANUAL = "manual"  # the small run a manual promote or rollback leaves
ROLE_TRIAL = "trial"  # a hyperparameter-search trial, nested under its config's candidate run
TAG_BEST = "nlu_mlflow.best"
TAG_BEST_RUN = "best_run_id"  # workflow run: the best candidate's run
BEST_METRIC_PREFIX = "best_"  # workflow run: best_intent_f1_weighted, the best candidate's key metrics
MLFLOW_RUN_NOTE = "mlflow.note.content"
MLFLOW_RUN_NAME = "mlflow.runName"  # MLflow's own tag: the name the UI lists

# --- registry ---
DEFAULT_MODEL_NAME = "rasa-nlu"  # NLU data alone (decide.model_kind.default_model_name)
DEFAULT_ASSISTANT_MODEL_NAME = "rasa-assistant"  # a whole Rasa project: NLU and dialogue
ALIAS_PRODUCTION = "production"
ALIAS_PREVIOUS = "previous-production"
WEBHOOK_NAME = "nlu-mlflow-rasa"  # the MLflow webhook `nlu-mlflow webhooks register` creates
EVENT_ALIAS_CREATED = "model_version_alias.created"  # MLflow webhook events the receiver handles
EVENT_VERSION_CREATED = "model_version.created"
WEBHOOK_EVENTS = (EVENT_ALIAS_CREATED, EVENT_VERSION_CREATED)

# --- defaults ---
DEFAULT_EXPERIMENT = "nlu-mlflow"
DEFAULT_ARTIFACT_DIR = "mlartifacts"
DEFAULT_PRIMARY_METRIC = INTENT_F1_WEIGHTED
DEFAULT_MIN_EXAMPLES_PER_INTENT = 2
DEFAULT_SEED = 42

# --- artifact paths inside a candidate run ---
ARTIFACT_REPORTS = "reports"
ARTIFACT_ARCHIVE = "rasa_model"
ARTIFACT_PREDICTIONS_TABLE = "predictions.json"
ARTIFACT_CONFIG = "config"
ARTIFACT_CRITICAL_TABLE = "critical.json"
ARTIFACT_CONVERSATIONS_TABLE = "conversations.json"  # one row per test conversation: passed, mistakes
ARTIFACT_DECISION = "decision.json"
ARTIFACT_COMPARISON = "comparison.md"
ARTIFACT_CHAMPION_REPORTS = "champion_reports"

# --- decision record ---
TAG_DECISION = "nlu_mlflow.decision"  # parent run and versions: promoted | kept | none | forced | rollback
TAG_DECISION_REASONS = "nlu_mlflow.decision_reasons"
TAG_DECISION_RUN = "nlu_mlflow.decision_run_id"
TAG_CANDIDATE_VERSION = "nlu_mlflow.candidate_version"
TAG_CHAMPION_VERSION = "nlu_mlflow.champion_version"
TAG_PROMOTED_AT = "nlu_mlflow.promoted_at"
DECISION_PROMOTED = "promoted"
DECISION_KEPT = "kept"
DECISION_NONE = "none"
DECISION_FORCED = "forced"
DECISION_ROLLBACK = "rollback"
DECISION_FAILED = "failed"  # the run stopped before it could decide (see the summary's "error")
TAG_PRODUCTION_MOVED = "nlu_mlflow.production_moved"  # parent run: "true" once production was moved
TAG_MOVED_AT = "nlu_mlflow.moved_at"  # workflow and manual runs: when production was moved (ISO, UTC, ms)
TAG_REPLACED_VERSION = "nlu_mlflow.replaced_version"  # ... and the version that held it just before the move
TAG_MODEL_NAME = "nlu_mlflow.model_name"  # workflow and manual runs: the registered model they decided about
TAG_LAST_CHALLENGE = (
    "nlu_mlflow.last_challenge"  # version: its latest challenge, e.g. "kept against version 4"
)
TAG_LAST_CHALLENGE_RUN = "nlu_mlflow.last_challenge_run_id"  # ... and the workflow run that made it
TAG_SCORES_PREFIX = "nlu_mlflow.scores."  # version: nlu_mlflow.scores.<inputs digest> = its cached scores
TAG_RECHECKS = "nlu_mlflow.rechecks"  # workflow run: times production moved under it and it decided again
CHAMPION_METRIC_PREFIX = "champion_"
MAX_TAG_LENGTH = 5000
TAG_ERROR = "nlu_mlflow.error"
TAG_DELTA_PREFIX = "nlu_mlflow.delta."  # nlu_mlflow.delta.intent_f1_weighted: candidate - champion
TAG_ENTITY_EXTRACTORS = "nlu_mlflow.entity_extractors"
TAG_HAS_CORE = "nlu_mlflow.has_core"  # "true": the archive is a whole assistant (NLU + dialogue policies)
TAG_PLOTS_ERROR = "nlu_mlflow.plots_error"

# --- hyperparameter search (workflow/tune.py): on the config's run and on each trial's nested run ---
TAG_STUDY = "nlu_mlflow.study"
TAG_TRIAL = "nlu_mlflow.trial"  # the Optuna trial number
TAG_TRIAL_STATE = "nlu_mlflow.trial_state"  # COMPLETE | PRUNED
ARTIFACT_SEARCH = "search"  # space.json, trials.csv, plots, and the train/validation splits the trials use
VALIDATION_PREFIX = "validation_"  # validation_intent_f1_weighted: a trial's score, step = epochs trained
EPOCHS_TRAINED = "epochs_trained"
SEARCH_BEST_SCORE = "search_best_validation_score"
SEARCH_DEFAULT_SCORE = "search_default_validation_score"  # the config's own values, tried first
SEARCH_EPOCHS_TRAINED = "search_epochs_trained"
SEARCH_SECONDS = "search_seconds"
SEARCH_TRIALS_PREFIX = "search_trials_"  # search_trials_complete, search_trials_pruned: trials by state
# --- training curves (tracking/curves.py): per-epoch figures of DIET/TED/ResponseSelector, step = epoch ---
CURVE_PREFIX = "curve"  # curve/DIETClassifier/t_loss, curve/DIETClassifier/i_acc, ...
# --- fine-tuning from production (decide.finetune) ---
FINETUNED_SUFFIX = "@finetuned"  # run name of a candidate fine-tuned from production: diet@finetuned
TAG_FINETUNE_PREFIX = "nlu_mlflow.finetune."  # parent run: nlu_mlflow.finetune.<config> = what was done, why
TAG_FULL_RETRAIN = "nlu_mlflow.full_retrain"  # parent run: why a --finetune-only run trained from scratch
TAG_TRAINING = "nlu_mlflow.training"  # candidate runs and versions: "scratch" | "finetuned"
TRAINING_SCRATCH = "scratch"
TRAINING_FINETUNED = "finetuned"
TAG_FINETUNED_FROM = "nlu_mlflow.finetuned_from"  # candidate runs and versions: the version it started from
TAG_FINETUNED_FROM_RUN = "nlu_mlflow.finetuned_from_run_id"  # that version's source run
TAG_EPOCH_FRACTION = "nlu_mlflow.epoch_fraction"  # share of the configured epochs the fine-tune trained
TAG_FINETUNE_DEPTH = "nlu_mlflow.finetune_depth"  # fine-tunes in a row since a model trained from scratch
TAG_DATA_ADDED = "nlu_mlflow.data_added"  # examples added since the base version's training data
TAG_DATA_REMOVED = "nlu_mlflow.data_removed"
TAG_BASE_EXAMPLES = "nlu_mlflow.base_examples"  # examples the base version was trained on
ARTIFACT_TRAINING_DATA = "training_data"  # candidate runs: the NLU file the model was trained on

# --- replay of live traffic (parent run metrics, also tags of the registered version) ---
LIVE_MESSAGES = "live_messages"
LIVE_UNIQUE_MESSAGES = "live_unique_messages"
LIVE_AGREEMENT_RATE = "live_agreement_rate"
LIVE_FLIP_RATE = "live_flip_rate"
LIVE_FALLBACK_RATE_PRODUCTION = "live_fallback_rate_production"
LIVE_FALLBACK_RATE_CANDIDATE = "live_fallback_rate_candidate"
LIVE_FALLBACK_INCREASE = "live_fallback_increase"
LIVE_ENTITY_CHANGE_RATE = "live_entity_change_rate"
LIVE_CRITICAL_FLIPS = "live_critical_flips"
# the live test set (a seeded share of annotated live messages, never trained on)
LIVE_INTENT_ACCURACY = "live_intent_accuracy"
LIVE_INTENT_F1_WEIGHTED = "live_intent_f1_weighted"
LIVE_TEST_EXAMPLES = "live_test_examples"
TAG_LIVE_PREFIX = "nlu_mlflow.live."  # + a figure above: the replay on the registered version
TAG_LIVE_REPLAYED_AT = "nlu_mlflow.live_replayed_at"  # epoch seconds of that replay
TAG_LIVE_WINDOW = "nlu_mlflow.live_window"
LIVE_FLIPS_TABLE = "live_flips.json"  # the MLflow table of flips (masked examples)
