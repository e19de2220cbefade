"""The report's one error."""

from __future__ import annotations


class ReportError(Exception):
    """Nothing to report on as asked (no such experiment or sweep, no finished case, an unknown reference):
    the library raises it, `cli.main` turns it into exit code 2 and its message on stderr, and a sweep logs
    it and goes on."""
