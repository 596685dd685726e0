"""Everything that touches MLflow: runs, datasets, tables, the registry, the score cache, the pyfunc model,
decision records and webhook registration.

The only layer that imports ``mlflow``; MLflow's exceptions become ``TrackingError`` (``errors``) at this
edge, so nothing above catches ``MlflowException``. May import ``decide`` and ``rasa`` (the pyfunc model
loads Rasa archives); never ``workflow``, ``receiver`` or ``cli``.
"""
