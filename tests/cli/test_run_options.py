"""`nlu-mlflow run`'s options are the workflow file's schema: one option per key, named, typed and described
by its field, landing where the field lives (``min_gain`` in ``promotion``)."""

from nlu_mlflow.cli import run_options
from nlu_mlflow.workflow import schema
from tests.helpers.cli import invoke

OWN = {"workflow_file", "lock_file", "log_file", "notify_env", "verbose"}


def test_every_top_level_and_promotion_key_has_exactly_one_option():
    names = [o.name for o in run_options.OPTIONS]
    assert len(names) == len(set(names))
    top = {f.alias for f in schema.WorkflowFile.__fields__.values()} - {"promotion"}
    policy = {f.alias for f in schema.Promotion.__fields__.values()}
    assert set(names) == top | policy | OWN


def test_field_names_are_unique_across_the_file_and_its_sections():
    """An option is named after its field alone, so no two sections may share a key."""
    keys = [f.alias for f in schema.WorkflowFile.__fields__.values() if f.alias not in schema.sections()]
    for section in schema.sections().values():
        keys += [f.alias for f in section.__fields__.values()]
    assert len(keys) == len(set(keys)) == len(schema.option_targets())


def test_parsed_values_are_sorted_by_what_they_set():
    values = {o.name: f"value of {o.name}" for o in run_options.OPTIONS}
    split = run_options.split(values)
    assert set(split.own) == OWN
    assert set(split.settings) == set(schema.option_targets())
    assert split.settings["data"] == "value of data" and split.settings["min_gain"] == "value of min_gain"


def test_an_empty_mlproject_parameter_is_not_given_and_off_or_a_number_is_parsed():
    split = run_options.split({"data": "", "project": "''", "significance_alpha": "0.05", "epochs": 3})
    assert split.settings == {"data": None, "project": None, "significance_alpha": 0.05, "epochs": 3}
    assert run_options.split({"max_core_action_f1_drop": "off"}).settings == {
        "max_core_action_f1_drop": "off"
    }


def test_help_lists_every_declared_option_with_the_schemas_description():
    result = invoke(["run", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for flag in (
        "--data",
        "--test-data",
        "--workflow",
        "--no-register",
        "--significance-alpha",
        "--cv-folds",
    ):
        assert flag in result.output
    assert schema.Promotion.__fields__["min_gain"].field_info.description[:40] in result.output
