"""Pure decisions: promotion policy, selection, critical-suite schema and scoring, metrics, significance,
reports and summaries.

Imports only the standard library, pandas, numpy and scipy (and ``nlu_mlflow.constants``/``errors``):
never rasa, mlflow, requests or another layer of the package. Plain values in, records out.
"""
