"""One line of ``flamingo-eval doctor``: what was checked, how it stands, and the fix."""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("ok", "warn", "fail")  # fail: a run would stop on it (doctor exits 1); warn: a run goes on, slower or caveated


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    what: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status.upper() if self.status != 'ok' else 'ok':<5} {self.name:<18} {self.what}" + (
            f"; fix: {self.fix}" if self.fix else "")


def size(n: float) -> str:
    """Bytes for a reader: GB, MB or kB."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def count(n: float) -> str:
    """A parameter count: 6.7B, 2.1M, 12k."""
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"
