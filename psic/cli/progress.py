"""What a batch tells the user on stderr: a progress bar, per-file errors, warnings, a summary.

The bar is drawn only on a terminal and never with ``--quiet``; errors are always
printed, one line per failed file; warnings unless ``--quiet``; one line per finished
file with ``--verbose``.
"""

from __future__ import annotations

import sys
import time

from psic.cli.batch import Outcome, Summary

_WIDTH = 24


class Reporter:
    """Turns a stream of outcomes into lines and a bar on stderr."""

    def __init__(self, total: int, verb: str, *, quiet: bool, verbose: bool) -> None:
        self.summary = Summary(total)
        self.verb = verb
        self.quiet = quiet
        self.verbose = verbose
        self.done = 0
        self.started = time.monotonic()
        self.bar = not quiet and total > 1 and sys.stderr.isatty()

    def add(self, outcome: Outcome) -> None:
        self.done += 1
        name = outcome.job.source
        if outcome.error is not None:
            self.summary.failed.append(outcome)
            self._line(f"psic: error: {name}: {outcome.error}")
        elif not self.quiet:
            for message in outcome.warnings:
                self._line(f"psic: warning: {name}: {message}")
            if self.verbose:
                self._line(f"psic: {name} -> {outcome.job.target} ({outcome.written} bytes)")
        self._draw()

    def finish(self) -> Summary:
        if self.bar:
            sys.stderr.write("\r\x1b[K")
        if not self.quiet and self.summary.total > 1:
            failed = len(self.summary.failed)
            seconds = time.monotonic() - self.started
            note = f", {failed} failed" if failed else ""
            print(f"psic: {self.verb} {self.done - failed} of {self.summary.total} files in {seconds:.1f} s{note}",
                  file=sys.stderr)
        return self.summary

    def _line(self, text: str) -> None:
        if self.bar:
            sys.stderr.write("\r\x1b[K")
        print(text, file=sys.stderr)

    def _draw(self) -> None:
        if not self.bar:
            return
        total = self.summary.total
        filled = _WIDTH * self.done // total
        failed = f", {len(self.summary.failed)} failed" if self.summary.failed else ""
        sys.stderr.write(f"\rpsic: [{'#' * filled}{'.' * (_WIDTH - filled)}] {self.done}/{total}{failed}")
        sys.stderr.flush()
