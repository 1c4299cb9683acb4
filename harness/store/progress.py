"""The local submit's progress: a tqdm bar with counts and ETA on a terminal, one plain line per event
otherwise (a log file or a pipe gets no control characters)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm


@dataclass
class Progress:
    """Jobs done / running / failed of ``total``; ``show`` after each event, ``close`` at the end."""

    total: int
    stream: Any = field(default=sys.stderr)
    done: int = 0
    failed: int = 0
    running: int = 0
    start: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        tty = getattr(self.stream, "isatty", lambda: False)()
        self.bar = tqdm(total=self.total, file=self.stream, unit="job", dynamic_ncols=True, smoothing=0,
                        bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {desc}") \
            if tty else None

    def show(self, note: str = "") -> None:
        """Redraw the bar (a note about a job that did not end ok stays above it), or print one line."""
        finished = self.done + self.failed
        counts = f"ok {self.done}  running {self.running}  failed {self.failed}"
        if self.bar is not None:
            if note and not note.endswith(" ok"):
                self.bar.write(note, file=self.stream)
            self.bar.n = finished
            self.bar.set_description_str(counts)  # redraws
            return
        elapsed = time.time() - self.start
        eta = f"{elapsed / finished * (self.total - finished):.0f}s" if finished else "?"
        print(f"[{finished}/{self.total}] {counts}  elapsed {elapsed:.0f}s  eta {eta}" + (f"  {note}" if note else ""),
              file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar on a terminal."""
        if self.bar is not None:
            self.bar.close()
