"""One exception base for every error a user can cause; messages say what must hold, what was given and the fix."""


class HarnessError(Exception):
    """Base of every user-facing error; the CLI prints it as one line and exits with status 2."""


class SweepError(HarnessError):
    """A sweep file that cannot be read, parsed or validated."""


class DataError(HarnessError):
    """A bad request for PDE data (unknown system, invalid range, bad resolution...)."""


class BackendError(HarnessError):
    """A backend that cannot run or submit the jobs (no sbatch, rejected job...)."""


class DataFileError(DataError):
    """A data file on disk that cannot serve a data source: missing, another format, a missing dataset, shapes
    that disagree, too few samples, non-finite values, or changed since its fingerprint was taken."""


def error_line(exc: BaseException) -> str:
    """What an exception recorded as a job's or a scoring's error says: its type and the first line of its
    message."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and other control characters written as their escapes (``\\n``), so that
    a key, a file name or a value holding one cannot split a message."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
