"""Errors a user can fix. Each message is one sentence naming the file, the item and the fix."""


class InputError(Exception):
    """Bad user input, found before any training started.

    Holds one or more problems; ``str()`` gives one sentence per line.
    """

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
