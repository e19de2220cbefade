"""The job's MLflow client: every call under the job's own HTTP limits, and a lost store told once.

MLflow reads its HTTP settings from the environment at each request (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`,
`MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`, `MLFLOW_HTTP_REQUEST_TIMEOUT`), and whether to draw its artifact
download bars (`MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`). `Client` wraps an `MlflowClient` so that these hold
the job's values (`tracking.http_*`, `progress`) during each of its calls only, and are restored after: the
rest of the process (a user's own MLflow code) keeps its own. During those calls urllib3's
"Retrying (Retry(total=3, ...))" warnings are silenced: a retry is not news, giving up is.

When a tracking server stops answering (gone or hanging, after the retries), the call raises
`TrackingLost`, one exception with one message, and every later call of that client raises it at once: a job
that lost its server fails within one retry budget (`Limits.give_up_s`), not one per remaining call.
`Client.once` makes one attempt without retries whatever happened (closing the run on the way out).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, replace

# The defaults of the `tracking.http_*` keys: a server refusing connections fails the job after about
# 2 * (2**4 - 2) = 28 s of back-off (plus up to 1 s of MLflow's jitter per retry), a hanging one after at
# most 5 attempts of 10 s more. MLflow's own defaults (7 retries, 120 s) take minutes.
HTTP_RETRIES = 4
HTTP_BACKOFF_S = 2
HTTP_TIMEOUT_S = 10
_JITTER_S = 1.0  # MLflow's MLFLOW_HTTP_REQUEST_BACKOFF_JITTER default, left as it is
_CALL_LOCK = threading.RLock()  # the environment is the process's: one limited call at a time
_QUIET_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


class TrackingError(RuntimeError):
    """A tracking problem the job states in one message (no traceback): `__main__` prints it and exits 1.
    `note(line)` adds what the layers above know (what is kept, how to continue)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message, self.notes = message, []

    def note(self, line: str) -> None:
        self.notes.append(line)

    def __str__(self) -> str:
        return "\n  ".join([self.message, *self.notes])


class TrackingLost(TrackingError):
    """The tracking store stopped answering in the middle of a job."""


@dataclass(frozen=True)
class Limits:
    """How long the job's calls keep trying a store that does not answer, and whether MLflow draws its
    artifact download bars. Only HTTP stores (`http(s)://`) retry; the others ignore the numbers."""

    retries: int = HTTP_RETRIES
    backoff_s: int = HTTP_BACKOFF_S
    timeout_s: int = HTTP_TIMEOUT_S
    progress: bool = True

    @property
    def give_up_s(self) -> float:
        """Seconds of back-off before a call to a server that refuses connections gives up: urllib3 waits
        0, 2b, 4b, ... between attempts (b = backoff_s), plus up to 1 s of jitter per retry after the first;
        a server that accepts and then hangs adds up to (retries + 1) * timeout_s."""
        waits = self.backoff_s * (2**self.retries - 2) if self.retries > 1 else 0
        return waits + _JITTER_S * max(self.retries - 1, 0)

    def env(self) -> dict[str, str]:
        return {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(self.backoff_s),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.timeout_s),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "true" if self.progress else "false",
        }

    @contextlib.contextmanager
    def applied(self):
        """Within: MLflow's HTTP variables hold these limits and urllib3's retry warnings are silenced;
        after: both as they were."""
        with _CALL_LOCK:
            saved = {k: os.environ.get(k) for k in self.env()}
            loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
            levels = [lg.level for lg in loggers]
            os.environ.update(self.env())
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            try:
                yield
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
                for lg, level in zip(loggers, levels):
                    lg.setLevel(level)


def unreachable(exc: BaseException) -> BaseException | None:
    """The HTTP failure behind an MLflow error (refused, timed out, reset, retries exhausted on 5xx), or
    None when the server answered (a missing run, a bad value) or the error is not about HTTP."""
    import requests

    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, requests.exceptions.RequestException):
            return e
        todo += [e.__cause__, e.__context__]
    return None


def _reason(cause: BaseException) -> str:
    """The short cause: "Connection refused", "Read timed out", else the exception's name."""
    seen, e = set(), cause
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
        e = e.__cause__ or e.__context__
    text = str(cause)
    for known in ("Read timed out", "Connection refused", "Connection reset", "Max retries exceeded"):
        if known in text:
            return known
    return type(cause).__name__


class Client:
    """An `MlflowClient` whose every call runs under `limits` and turns a store that stopped answering into
    `TrackingLost` (then raised at once by every later call). Anything else of the client passes through."""

    def __init__(self, client, uri: str, limits: Limits | None = None):
        self._client, self.uri, self.limits = client, uri, limits or Limits()
        self.lost: TrackingLost | None = None
        self.server = uri.startswith(("http://", "https://"))

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self.limits.applied():
                if self.lost is not None:  # checked under the lock: another thread may just have lost it
                    raise self.lost
                try:
                    return attr(*args, **kwargs)
                except Exception as exc:
                    cause = unreachable(exc) if self.server else None
                    if cause is None:
                        raise
                    self.lost = self._lost(name, cause)
                    raise self.lost from None

        call.__name__ = name
        return call

    def _lost(self, doing: str, cause: BaseException) -> TrackingLost:
        return TrackingLost(
            f"tracking.uri {self.uri}: the MLflow server stopped answering ({_reason(cause)}, in {doing}); "
            f"gave up after {self.limits.retries} retries, about {self.limits.give_up_s:.0f} s "
            "(tracking.http_retries, tracking.http_backoff_s, tracking.http_timeout_s)"
        )

    def once(self, name: str, *args, **kwargs) -> bool:
        """One attempt of `client.<name>(*args)`, no retries, at most 5 s, even after the store was lost:
        True when it went through."""
        quick = replace(self.limits, retries=0, timeout_s=min(self.limits.timeout_s, 5))
        with quick.applied(), contextlib.suppress(Exception):
            getattr(self._client, name)(*args, **kwargs)
            return True
        return False
