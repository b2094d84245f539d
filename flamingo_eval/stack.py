"""The software stack a result was computed on: installed versions, the declared ranges, the lock.

A fresh ``make setup`` installs exactly ``requirements.lock`` (written by ``make lock``); ``pyproject.toml``
keeps ranges, capped at the newest versions tested, for installs into other environments. Result files
record the versions that change outputs and whether the installed set is the locked one, so a leaderboard
row can be traced to its stack.
"""

from __future__ import annotations

import os
import platform
import re
from functools import cache
from importlib.metadata import PackageNotFoundError, distributions, requires, version
from pathlib import Path

# the libraries whose behaviour (and, for transformers and open_clip, whose internals) the outputs depend on
KEY_PACKAGES = ("torch", "transformers", "open_clip_torch", "tokenizers")
RECORDED = ("flamingo-eval", *KEY_PACKAGES, "pycocoevalcap", "faiss-cpu", "faiss-gpu", "datasets", "numpy")
LOCK_FILE = Path(__file__).resolve().parent.parent / "requirements.lock"
# whose versions decide outputs beyond what the self-checks see (configs, tokenizers, processors, image towers):
# outside the declared range a run refuses, unless told to go on (and the result says so)
RANGE_CHECKED = ("transformers", "open_clip_torch", "tokenizers")
UNTESTED_ENV = "FLAMINGO_EVAL_UNTESTED_STACK"
FAISS = ("faiss-cpu", "faiss-gpu")
_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def package_versions() -> dict[str, str]:
    """Python and the recorded packages that are installed."""
    out = {"python": platform.python_version()}
    out.update({name: v for name in RECORDED if (v := installed(name)) is not None})
    return out


def declared_range(name: str) -> str:
    """The version range flamingo-eval's metadata declares for ``name`` (``>=4.56,<=5.25.0``), or ``any``."""
    try:
        reqs = requires("flamingo-eval") or []
    except PackageNotFoundError:  # run from a source tree that was never installed: no declared ranges
        return "any"
    for req in reqs:
        m = re.match(r"^([A-Za-z0-9._-]+)\s*([^;]*)", req)
        if m and canonical(m.group(1)) == canonical(name) and ";" not in req:
            spec = m.group(2).strip()
            return ",".join(sorted(spec.split(","), key=lambda s: s.lstrip("<>=!~"))) if spec else "any"
    return "any"


def read_lock(path: Path = LOCK_FILE) -> dict[str, str] | None:
    """Canonical package name -> locked version; None where no lock ships (an install outside a checkout)."""
    if not path.is_file():
        return None
    out = {}
    for line in path.read_text().splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[canonical(m.group(1))] = m.group(2)
    return out


def lock_differences(lock: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """Locked packages (faiss aside) whose installed version differs (None: not installed), and installed ones the lock lacks."""
    lock = dict(lock)
    present: dict[str, str] = {}
    for d in distributions():  # in sys.path order: where a package is installed twice, the first is the one imported
        if d.metadata["Name"]:
            present.setdefault(canonical(d.metadata["Name"]), d.version)
    for name in ("flamingo-eval", *FAISS):  # the project itself; faiss is cpu or gpu by the user's choice
        present.pop(name, None)
        lock.pop(name, None)
    diff: dict[str, dict[str, str | None]] = {}
    for name, want in lock.items():
        if present.get(name) != want:
            diff[name] = {"locked": want, "installed": present.get(name)}
    for name in sorted(set(present) - set(lock) - {"setuptools", "wheel"}):
        diff[name] = {"locked": None, "installed": present[name]}
    return diff


def out_of_range() -> list[str]:
    """The range-checked packages installed at a version flamingo-eval does not declare, as "name version"."""
    from packaging.specifiers import SpecifierSet

    bad = []
    for name in RANGE_CHECKED:
        have, spec = installed(name), declared_range(name)
        if have is not None and spec != "any" and not SpecifierSet(spec).contains(have, prereleases=True):
            bad.append(f"{name} {have} (supported {spec})")
    return bad


def check_supported() -> None:
    """Refuse, in one line, a stack outside the declared ranges: a newer transformers may read a config or
    run a processor differently, which no self-check of the decoder can see. ``FLAMINGO_EVAL_UNTESTED_STACK=1``
    runs anyway; the result records it."""
    from flamingo_eval.errors import EnvironmentProblem

    bad = out_of_range()
    if bad and os.environ.get(UNTESTED_ENV) != "1":
        raise EnvironmentProblem(
            f"untested versions installed: {', '.join(bad)}; outputs may differ from the tested stack. Install "
            f"the supported versions (`make setup` installs the lock) or set {UNTESTED_ENV}=1 to run anyway"
        )


@cache
def stack_record() -> dict:
    """What a result file records: key versions, whether each and the whole installed set match the lock."""
    lock = read_lock()
    record: dict = {"versions": package_versions(), "out_of_range": out_of_range()}
    if lock is None:
        record["lock"] = {"file": None, "matches": None}
        return record
    diff = lock_differences(lock)
    record["lock"] = {
        "file": LOCK_FILE.name,
        "matches": not diff,
        "key_packages": {name: canonical(name) not in diff for name in KEY_PACKAGES},
        "differences": diff,
    }
    return record


def describe() -> str:
    """One line naming the installed key versions and the supported transformers range."""
    versions = ", ".join(f"{name} {installed(name) or 'not installed'}" for name in KEY_PACKAGES)
    return f"installed: {versions}; supported transformers {declared_range('transformers')}"


def main() -> int:
    """``python -m flamingo_eval.stack``: exit 1 (listing them) when the installed packages are not the lock."""
    lock = read_lock()
    if lock is None:
        print(f"no lock file at {LOCK_FILE}")
        return 1
    diff = lock_differences(lock)
    for name, d in diff.items():
        print(f"{name}: locked {d['locked'] or '(not in the lock)'}, installed {d['installed'] or '(missing)'}")
    print(f"the installed packages {'differ from' if diff else 'are'} {LOCK_FILE.name}"
          + ("; rebuild the environment with `make clean setup`" if diff else ""))
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
