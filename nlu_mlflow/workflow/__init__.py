"""The order of the steps: settings, inputs, the run itself, the champion, cross-validation, manual moves of
production, remote data and the run lock.

``run.run`` is the one function that knows the order (load -> validate -> train -> evaluate -> log ->
select -> register -> re-score production -> decide -> record -> promote). May import ``decide``, ``rasa``
and ``tracking``; never ``receiver`` or ``cli``.
"""
