"""The one exception hierarchy of formtool.

Library code raises these with a German, user-facing message that names the
file, row, field or host concerned. Only ``cli.py`` turns them into output and
exit codes.
"""


class FormtoolError(Exception):
    """Base class: a problem the user can understand and act on."""


class WorkspaceError(FormtoolError):
    """No workspace, or its configuration is unusable."""


class FormDefinitionError(FormtoolError):
    """A form definition is missing or invalid.

    ``problems`` lists every problem found, one line each.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        return "\n".join([super().__str__(), *(f"  - {p}" for p in self.problems)])


class OutputError(FormtoolError):
    """A result could not be written."""
