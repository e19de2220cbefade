"""Content-addressed caches on disk: one mechanism for preprocessed volumes and trained baselines.

    cache = Cache(root, code=("iunet_bench.data.preprocess", ...), libraries=("numpy", "scipy"))
    key = cache.key({"content": ..., "settings": ...})
    value, hit = cache.get_or_make(name, key, make=..., save=..., load=...)

- A key hashes what the entry is made from (content and configuration, as JSON) together with the source
  files of the modules that make it and the versions of the libraries under them (`code_digest`): editing
  any of those modules, even a comment, makes new keys, so a stale entry is never served. Nothing is bumped
  by hand.
- An entry is a folder `<root>/<name>-<key>/`, written into a temporary folder and renamed into place
  (atomic): a folder that exists is complete. A damaged entry (it fails to load) is made again.
- `get_or_make` makes a missing entry under a lock on `<root>/<name>-<key>.lock` (the `filelock`
  package; the kernel drops the lock when its holder dies, so a killed job leaves none behind), so
  parallel jobs that need the same entry make it once and the others wait and load it.
- Caching is best-effort: a write that fails (disk full, a folder gone read-only) warns once per cache,
  naming the folder, and the value made is returned anyway.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

T = TypeVar("T")


def _source(module: str) -> bytes:
    """The source file of a module (its name alone when it has none, e.g. a zipped install)."""
    spec = importlib.util.find_spec(module)
    try:
        return Path(spec.origin).read_bytes()
    except (OSError, TypeError, AttributeError):
        return b""


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@cache
def code_digest(modules: tuple[str, ...], libraries: tuple[str, ...] = ()) -> str:
    """sha256 over the source of `modules` and the installed versions of `libraries` (once per process)."""
    h = hashlib.sha256()
    for lib in libraries:
        h.update(f"{lib}={_version(lib)}\n".encode())
    for name in modules:
        h.update(name.encode() + b"\0" + _source(name) + b"\0")
    return h.hexdigest()[:16]


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write a file through a temporary file beside it and a rename: readers see all of it or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(folder: Path) -> None:
    """Prove that `folder` takes files, or can be made where its nearest existing parent takes them; raises
    OSError otherwise. Creates nothing (a probe file comes and goes), so a check that fails later leaves no
    folder behind; whoever writes there first makes the folder."""
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(existing))
    fd, tmp = tempfile.mkstemp(dir=existing, prefix=".probe-")
    os.close(fd)
    os.unlink(tmp)


def require_writable(folder: Path, key: str, hint: str = "") -> None:
    """`check_writable`, as a ConfigError naming the config key that chose the folder."""
    from iunet_bench.core.schema import ConfigError

    try:
        check_writable(folder)
    except OSError as exc:
        reason = f"{type(exc).__name__}: {exc.strerror or exc}"
        raise ConfigError([f"{key}: {folder} is not a writable folder ({reason}){hint}"]) from None


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]


class Cache:
    """Entries under `root`, keyed by content, configuration and the code that makes them (see module)."""

    def __init__(
        self,
        root: Path,
        code: Iterable[str],
        libraries: Iterable[str] = (),
        what: str = "cache entries",
        config_key: str = "",
        wait_seconds: float = 6 * 3600,
    ):
        self.root = Path(root)
        self.code, self.libraries = tuple(code), tuple(libraries)
        self.what, self.config_key, self.wait_seconds = what, config_key, wait_seconds
        self._warned = False

    def key(self, payload: Any) -> str:
        blob = json.dumps(payload, sort_keys=True, default=list)
        digest = code_digest(self.code, self.libraries)
        return hashlib.sha256(f"{digest}|{blob}".encode()).hexdigest()[:24]

    def folder(self, name: str, key: str) -> Path:
        return self.root / f"{safe_name(name)}-{key}"

    def get_or_make(
        self,
        name: str,
        key: str,
        make: Callable[[], T],
        save: Callable[[T, Path], None],
        load: Callable[[Path], T],
    ) -> tuple[T, bool]:
        """(the entry's value, whether it came from the cache). `save(value, folder)` writes the entry's
        files into an empty folder; `load(folder)` reads them back."""
        folder = self.folder(name, key)
        value = self._load(folder, load)
        if value is not None:
            return value, True
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(folder) + ".lock")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                print(f"waiting for another job that is making {folder}", flush=True)
                lock.acquire(timeout=self.wait_seconds)
        except Timeout:  # (an OSError too) waited `wait_seconds` for another job: give up, say where
            raise
        except OSError as exc:  # no lock can be taken here: make it without one, and do not store it
            self._warn(exc)
            return make(), False
        try:
            value = self._load(folder, load)  # made by the job we waited for
            if value is not None:
                return value, True
            value = make()
            self._store(folder, value, save)
            return value, False
        finally:
            lock.release()

    def _load(self, folder: Path, load: Callable[[Path], T]) -> T | None:
        if not folder.is_dir():
            return None
        try:
            return load(folder)
        except Exception:  # noqa: BLE001 - a damaged entry is made again, never trusted
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def _store(self, folder: Path, value: Any, save: Callable[[Any, Path], None]) -> None:
        tmp = None
        try:
            tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".tmp-{folder.name}-"))
            save(value, tmp)
            shutil.rmtree(folder, ignore_errors=True)  # a damaged entry that failed to load
            os.rename(tmp, folder)
        except OSError as exc:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            self._warn(exc)

    def _warn(self, exc: OSError) -> None:
        if self._warned:
            return
        self._warned = True
        warnings.warn(
            f"{self.config_key + ': ' if self.config_key else ''}cannot write {self.what} under {self.root} ({type(exc).__name__}: {exc}); going on without "
            "caching them (further failures are not reported)",
            RuntimeWarning,
            stacklevel=3,
        )
