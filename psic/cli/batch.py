"""Many inputs, one command: planning the outputs, checking them all first, running the jobs.

A batch is planned and checked as a whole before any model loads: every input must exist,
no two inputs may map to the same output, and no output may exist without ``--force``.
Then each file is a job: run in this process, or in ``-j N`` worker processes that load
the model once each. A failing file is reported on its own line and counted; the others
go on.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from psic.cli import output
from psic.errors import BatchError, OutputExistsError, PsicError, PsicIOError, UsageError


@dataclass(frozen=True)
class Job:
    """One input and the output it becomes."""

    source: str
    target: str


@dataclass(frozen=True)
class Outcome:
    """What a job reports back: bytes written and the warnings the library issued."""

    job: Job
    written: int = 0
    warnings: tuple[str, ...] = ()
    error: str | None = None
    exit_code: int = 0


@dataclass
class Summary:
    """Counts of a finished batch."""

    total: int
    failed: list[Outcome] = field(default_factory=list)

    def exit_error(self) -> PsicError | None:
        """None if every file succeeded; else an error whose exit code is the failures' common one (or 11)."""
        if not self.failed:
            return None
        codes = {outcome.exit_code for outcome in self.failed}
        error = BatchError(f"{len(self.failed)} of {self.total} files failed")
        error.exit_code = codes.pop() if len(codes) == 1 else BatchError.exit_code
        return error


def expand_inputs(names: Sequence[str], wanted: Callable[[str], bool]) -> list[tuple[str, str]]:
    """``(path, path relative to its IN)`` for files and, recursively, folders (matching ``wanted``)."""
    found: list[tuple[str, str]] = []
    for name in names:
        if os.path.isdir(name):
            matches = sorted(_walk(name, wanted))
            if not matches:
                raise PsicIOError(f"folder {output.display_name(name)} holds no files to process")
            found.extend(matches)
        elif os.path.isfile(name):
            found.append((name, os.path.basename(name)))
        elif output.is_stdio(name):
            raise UsageError("'-' (standard input) works with -o OUT, not with --out-dir")
        else:
            raise PsicIOError(f"cannot read {output.display_name(name)}: No such file or directory")
    return found


def _walk(folder: str, wanted: Callable[[str], bool]) -> Iterator[tuple[str, str]]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for file in files:
            path = os.path.join(root, file)
            if not file.startswith(".") and wanted(path):
                yield path, os.path.relpath(path, folder)


def plan(inputs: Sequence[tuple[str, str]], out_dir: str, extension: str) -> list[Job]:
    """A job per input, the output named after it under ``out_dir``; two inputs on one output fail."""
    jobs: list[Job] = []
    claimed: dict[str, str] = {}
    for path, relative in inputs:
        target = os.path.join(out_dir, os.path.splitext(relative)[0] + extension)
        key = os.path.normcase(os.path.abspath(target))
        if key in claimed:
            raise UsageError(f"{path!r} and {claimed[key]!r} would both be written to {target!r}")
        claimed[key] = path
        jobs.append(Job(path, target))
    return jobs


def check_outputs(jobs: Iterable[Job], out_dir: str, *, force: bool) -> None:
    """Refuse existing outputs (without force) and an out-dir that is a file; then create the folder."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise PsicIOError(f"--out-dir {output.display_name(out_dir)} is not a folder")
    if not force:
        existing = [job.target for job in jobs if os.path.lexists(job.target)]
        if existing:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            raise OutputExistsError(
                f"output {output.display_name(existing[0])}{more} exists; use -f/--force to overwrite"
            )
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise PsicIOError(f"cannot create {output.display_name(out_dir)}: {exc.strerror or exc}") from None


Work = Callable[[Job, Any], int]


def run_job(work: Work, job: Job, settings: Any) -> Outcome:
    """Run one job, turning its warnings and its error (if any) into an :class:`Outcome`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            os.makedirs(os.path.dirname(os.path.abspath(job.target)), exist_ok=True)
            written = work(job, settings)
        except PsicError as exc:
            return Outcome(job, error=" ".join(str(exc).split()), exit_code=exc.exit_code)
        except OSError as exc:
            return Outcome(job, error=f"{exc.strerror or exc}", exit_code=PsicIOError.exit_code)
    return Outcome(job, written, tuple(str(w.message) for w in caught))


def run(work: Work, jobs: Sequence[Job], settings: Any, workers: int) -> Iterator[Outcome]:
    """Outcomes as jobs finish: in this process, or in ``workers`` processes."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield run_job(work, job, settings)
        return
    workers = min(workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = get_context("spawn")  # fork after torch's threads have started is unsafe
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_limit_threads, initargs=(threads,)) as pool:
        pending: list[Future[Outcome]] = [pool.submit(run_job, work, job, settings) for job in jobs]
        try:
            for future in as_completed(pending):
                yield future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _limit_threads(threads: int) -> None:
    """Workers share the cores: each gets its part of them for torch's intra-op threads."""
    import torch

    torch.set_num_threads(threads)
