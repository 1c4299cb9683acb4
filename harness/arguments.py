"""What the `harness` command accepts, checked before a command acts: every mistake one line and exit status 2.

``Harness`` is the command group: a usage error (an unknown option or command, a value of the wrong type or
range) is one line naming the command and where its help is, not click's usage block. ``friendly`` wraps each
command: a ``HarnessError``, or a folder that cannot be written, is one line. The options' own checks:
``Finite`` (a number that is finite and in range: an interval, a memory size), ``results_root`` (``--root``
is a folder or can be made one), ``new_file`` (an ``--out`` file: its suffix is the format's, its folder
exists, and it is new unless ``--force``) and ``report_folder`` (an ``--out`` folder for a report).
"""

from __future__ import annotations

import errno
import math
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from harness.errors import HarnessError, one_line

UNWRITABLE = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM)
POSITIVE = click.IntRange(min=1)  # counts of workers, CPUs, samples, refreshes...
NATURAL = click.IntRange(min=0)  # seeds, bootstrap resamples, GPUs


def fail(message: str) -> None:
    """Print ``message`` as the one line of a user error and exit with status 2."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(2)


class Harness(click.Group):
    """The `harness` group: click's usage errors as one line (``error: harness CMD: problem; see ...``)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # `harness` alone: the help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            command = _command(exc.ctx)
            fail(f"{command}: {exc.format_message().rstrip('.')}; see `{command} --help`")
        except click.ClickException as exc:
            fail(exc.format_message())
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(code if isinstance(code, int) else 0)
        return code


def _command(ctx: click.Context | None) -> str:
    """``harness`` and the subcommand of ``ctx``, whatever the program was called (``python -m harness.cli``)."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["harness", *reversed(names)])


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HarnessError, and a folder that cannot be written (read-only, full, no permission), into a one-line
    message and exit status 2."""

    @wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            fail(str(exc))
        except OSError as exc:
            if exc.errno not in UNWRITABLE:
                raise
            fail(f"{exc.filename or exc.filename2 or '?'}: cannot write ({exc.strerror}); free space or make the "
                 "results folder writable (or pass another --root); files written before are intact")

    return inner


class Finite(click.ParamType):
    """A finite number at least ``low`` (above it when ``strict``): NaN and the infinities are refused."""

    name = "number"

    def __init__(self, low: float, *, strict: bool = False) -> None:
        self.low, self.strict = low, strict

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number) or number < self.low or (self.strict and number == self.low):
            self.fail(f"{value} is not a finite number {'>' if self.strict else '>='} {self.low:g}", param, ctx)
        return number


def results_root(ctx: click.Context, param: click.Parameter, root: Path) -> Path:
    """``--root``: a folder, or a path where one can be made (not a file, nor under one, nor a dangling link)."""
    for path in (root, *root.parents):
        if path.is_symlink() and not path.exists():
            raise click.BadParameter(f"{path} is a symbolic link to nothing (or a loop): name the results folder")
        if path.exists() and not path.is_dir():
            where = "" if path == root else f"{root} lies under "
            raise click.BadParameter(f"{where}{path} is a file, not a folder: name the results folder")
    return root


def _listed(suffixes: tuple[str, ...]) -> str:
    return ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]


def new_file(path: Path, suffixes: tuple[str, ...], force: bool, command: str) -> Path:
    """An ``--out`` file of ``command``: it ends in one of ``suffixes``, its folder exists (none is made), and it
    does not exist yet unless ``force``."""
    if path.is_dir():
        raise HarnessError(f"--out {path} is a folder: name a file in it ending in {_listed(suffixes)}")
    if path.suffix not in suffixes:
        raise HarnessError(f"--out {path}: {command} writes {_listed(suffixes)} files: end the name in "
                           f"{'one of them' if len(suffixes) > 1 else suffixes[0]}")
    if not path.parent.is_dir():
        raise HarnessError(f"--out {path}: folder {path.parent} does not exist: create it first (--out makes no "
                           "folders)")
    if (path.exists() or path.is_symlink()) and not force:
        raise HarnessError(f"--out {path} exists: pass --force to overwrite it, or name a new file")
    return path


def report_folder(path: Path | None, force: bool) -> Path | None:
    """An ``--out`` folder of `harness report`: new in a folder that exists, or one a report was written to (any
    other folder with ``force``)."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise HarnessError(f"--out {path} is a file, not a folder: name the report folder (a new one, or one a "
                           "report was written to)")
    if not path.parent.is_dir():
        raise HarnessError(f"--out {path}: folder {path.parent} does not exist: create it first (--out makes no "
                           "folders)")
    if path.is_dir() and any(path.iterdir()) and not (path / "report.html").is_file() and not force:
        raise HarnessError(f"--out {path} holds other files: name a new folder (or one a report was written to), "
                           "or pass --force to write the report among them")
    return path
