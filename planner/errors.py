"""One exception hierarchy for the whole product, mapped to exit codes by the CLI.

Exit codes: 0 ok, 1 infeasible / no plan found, 2 bad input (file, schema, references).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Problem:
    """One thing wrong with an input: where it is, what it is, how to fix it."""

    file: str
    path: str
    message: str
    value: object = None
    fix: str = ""
    did_you_mean: str | None = None

    def render(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        text = f"{where}: {self.message}"
        if self.value is not None:
            text += f" (got {self.value!r})"
        if self.did_you_mean:
            text += f". Did you mean {self.did_you_mean!r}?"
        if self.fix:
            text += f"\n    To fix: {self.fix}"
        return text


class PlannerError(Exception):
    """Base class; every error the user can see derives from it."""

    exit_code = 1


class InputError(PlannerError):
    """Bad input: the scenario, a catalog or an option. Exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str, file: str = ""):
        if isinstance(problems, str):
            problems = [Problem(file=file, path="", message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found:" if n > 1 else ""
        body = "\n".join(p.render() for p in self.problems)
        return f"{head}\n{body}" if head else body


def did_you_mean(value: str, choices) -> str | None:
    """The closest known id to a misspelt one, or None."""
    import difflib

    matches = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return matches[0] if matches else None
