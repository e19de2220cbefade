"""One job per run: a job's claim on its MLflow run, so that one configuration started twice at once is
refused instead of two jobs writing into one run.

A job holds a claim on the run it runs: the run's `claim` tag, `{"host", "pid", "token", "at"}`, written
when the run is created or reopened and refreshed every `HEARTBEAT_S` seconds while the job lives
(`keep_alive`). Another job of the same identity (`resume.run_key`, same sweep parent) respects it. A claim
is *live* while its run is RUNNING and its job is alive: on this host its process exists and, on any host,
its heartbeat is younger than `tracking.claim_timeout_s`. So a job killed with `kill -9` holds nothing (its
process is gone, or its pid is now this job's: the same command resumes its run at once; from another
machine, once the heartbeat is `claim_timeout_s` old, or at once with `tracking.claim_timeout_s=0`).

The store is the referee, so this holds across machines sharing a tracking server, not only beside one
sqlite file:

- reopening (`take`): a live claim refuses the job (`RunClaimed`); else the job writes its claim, waits
  `SETTLE_S` and reads it back: of jobs that took the same free run at once, the last writer keeps it and
  the others see its token and stop (the wait is far longer than the check-to-write interval);
- a new run (`settle_new`): the run is created with the claim in its tags; the job then lists the runs of
  its identity, and if another live one is older (start time, then run id: every job orders them alike),
  it deletes its own, still empty, run and stops.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from iunet_bench.tracking.client import TrackingError

TAG = "claim"
HEARTBEAT_S = 30.0  # how often a running job refreshes its claim
SETTLE_S = 1.0  # how long a job that took a run waits before reading its claim back


class RunClaimed(TrackingError):
    """Another live job runs this configuration's run."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@dataclass
class Claim:
    """This job's claim. `timeout_s`: `tracking.claim_timeout_s`."""

    client: object
    timeout_s: float
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def tags(self) -> dict[str, str]:
        """The claim as run tags (for a run created with it)."""
        held = {"host": self.host, "pid": self.pid, "token": self.token, "at": round(time.time(), 1)}
        return {TAG: json.dumps(held)}

    @staticmethod
    def _claim_of(run) -> dict | None:
        """The claim written on `run` (with its `age` in seconds), None when there is none of ours."""
        try:
            held = json.loads(run.data.tags.get(TAG) or "null")
            return {**held, "pid": int(held["pid"]), "age": time.time() - float(held["at"])}
        except (TypeError, ValueError, KeyError):
            return None  # no claim (a run of an older version), or not one of ours

    def holder(self, run) -> dict | None:
        """Who else holds `run` now (its claim), or None when nobody live does."""
        held = self._claim_of(run)
        if held is None or held.get("token") == self.token:
            return None
        if run.info.status != "RUNNING" or held["age"] > self.timeout_s:
            return None
        if held.get("host") == self.host and (held["pid"] == self.pid or not _alive(held["pid"])):
            return None  # its process is gone (or its pid is ours now: a restarted container's job is pid 1)
        return held

    def _refusal(self, run, held: dict) -> RunClaimed:
        return RunClaimed(
            f"MLflow run {run.info.run_id} of this configuration is being run by another job (host "
            f"{held.get('host')}, pid {held['pid']}, heard from {held['age']:.0f} s ago); this job stops so that "
            "the two do not write into one run. Wait for that job to end (the same command then returns its "
            "result), or, if it is dead on another machine, run again with tracking.claim_timeout_s=0 to take "
            "its run over (resume=false starts a separate run)."
        )

    def refuse_if_held(self, run) -> None:
        held = self.holder(run)
        if held is not None:
            raise self._refusal(run, held)

    def take(self, run_id: str) -> None:
        """Claim an existing run (to resume it): RunClaimed when a live job holds it, or when another job
        took it at the same moment and wrote its claim last."""
        self.refuse_if_held(self.client.get_run(run_id))
        self.client.set_tag(run_id, TAG, self.tags()[TAG])
        time.sleep(SETTLE_S)
        run = self.client.get_run(run_id)
        held = self._claim_of(run)
        if held is None or held.get("token") != self.token:  # written after ours: that job is alive
            raise self._refusal(run, held or {"host": "?", "pid": 0, "age": 0.0})

    def settle_new(self, run, experiment_id: str, key: str, parent: str | None) -> None:
        """After creating `run` (with `tags()`): RunClaimed, and `run` deleted, when an older live run of the
        same identity exists (the two jobs started at once)."""
        mine = (run.info.start_time, run.info.run_id)
        runs = self.client.search_runs(
            [experiment_id], f"tags.run_key = '{key}'", order_by=["attributes.start_time ASC"], max_results=50
        )
        for other in runs:
            if other.data.tags.get("mlflow.parentRunId") != parent:
                continue
            if (other.info.start_time, other.info.run_id) < mine and self.holder(other) is not None:
                self.client.delete_run(run.info.run_id)  # nothing in it yet but its tags
                self.refuse_if_held(other)  # raises: `other` is live

    def keep_alive(self, run_id: str):
        """Refresh the claim every HEARTBEAT_S seconds in a daemon thread; returns the function that stops
        it. A failed refresh is left to the job's own next call to report."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                try:
                    self.client.set_tag(run_id, TAG, self.tags()[TAG])
                except Exception:  # noqa: BLE001  the job's own calls say what is wrong with the store
                    return

        thread = threading.Thread(target=beat, name=f"claim {run_id}", daemon=True)
        thread.start()

        def stopped() -> None:
            stop.set()
            thread.join(timeout=1.0)  # a refresh under way (or a late one on a closed run) does no harm

        return stopped
