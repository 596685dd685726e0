"""The webhook service: verify MLflow's deliveries (``signature``), remember them (``deliveries``), make
Rasa serve production (``deploy``), tell the team (``notify``), all behind ``app``.

May import ``decide``, ``rasa`` and ``tracking``; never ``workflow`` or ``cli``.
"""
