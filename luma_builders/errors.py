"""The error every reader raises for a bad source: it names the file (and row or line) and what to do."""


class SourceError(ValueError):
    """A source file is missing, unreadable, unreachable, or not in the published LUMA format."""
