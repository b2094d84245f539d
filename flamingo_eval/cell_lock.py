"""One run per cell at a time: a second run of the same (model, task, shots, selection) into the same output
folder waits for the first (then finds its items logged and computes nothing), or with ``--no-wait`` stops.

The lock is an OS file lock (``filelock``): it dies with the process that holds it, so a run killed with
SIGKILL never blocks the rerun. Under torchrun rank 0 alone takes it, for the whole job; the other ranks
learn from rank 0 whether it was taken, a poll at a time, so no collective waits long enough to time out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from flamingo_eval.distributed import World
from flamingo_eval.errors import UserError

POLL_S = 10.0  # how long rank 0 waits for the lock between telling the other ranks it is still waiting


class CellBusy(UserError):
    """Another run is computing this cell and this one was told not to wait (exit 3: retry later)."""

    exit_code = 3


@contextmanager
def cell_lock(path: Path, what: str, world: World, wait: bool = True, poll_s: float = POLL_S) -> Iterator[None]:
    """Hold ``path``'s lock on rank 0 while the block runs, every rank of the job waiting alike."""
    lock = None
    if world.is_main:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
    said = False
    while True:
        taken = False
        if lock is not None:
            try:
                lock.acquire(timeout=poll_s if wait else 0)
                taken = True
            except Timeout:
                pass
        if world.broadcast_from_main(taken):
            break
        if not wait:
            raise CellBusy(f"{what} is being computed by another run (lock {path}); "
                           f"rerun without --no-wait to wait for it")
        if world.is_main and not said:
            print(f"{what}: waiting for another run computing it (lock {path})", file=sys.stderr, flush=True)
            said = True
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
