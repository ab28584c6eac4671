"""The one exception hierarchy of formtool.

Library code raises these with a German, user-facing message that names the
file, row, field or host concerned. Only ``cli.py`` turns them into output and
exit codes.
"""


class FormtoolError(Exception):
    """Base class: a problem the user can understand and act on.

    ``detail`` keeps a library's own (often English) wording for ``--debug``; the
    message itself is German.
    """

    def __init__(self, *args: object, detail: str = "") -> None:
        super().__init__(*args)
        self.detail = detail


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


_OS_REASONS = {  # errno -> German (POSIX numbers; Windows maps the common ones to them)
    2: "nicht gefunden", 13: "keine Berechtigung", 1: "keine Berechtigung",
    28: "der Datenträger ist voll", 30: "schreibgeschützt", 21: "ist ein Ordner",
    20: "ein Teil des Pfads ist kein Ordner", 36: "Name zu lang", 24: "zu viele offene Dateien",
    5: "Ein-/Ausgabefehler des Datenträgers", 16: "wird gerade benutzt", 26: "wird gerade benutzt",
    32: "Verbindung beendet", 104: "Verbindung zurückgesetzt", 110: "Zeitüberschreitung",
    111: "Verbindung abgelehnt", 113: "kein Weg zum Rechner", 101: "Netz nicht erreichbar",
}


def os_reason(exc: OSError) -> str:
    """What an operating-system error means, in German (never the English strerror)."""
    if isinstance(exc, FileNotFoundError):
        return "nicht gefunden"
    if isinstance(exc, PermissionError):
        return "keine Berechtigung (oder in einem anderen Programm geöffnet)"
    if isinstance(exc, TimeoutError):
        return "Zeitüberschreitung"
    return _OS_REASONS.get(exc.errno or 0, f"Ein-/Ausgabefehler ({type(exc).__name__})")
