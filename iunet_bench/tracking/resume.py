"""Resume: a job run again with the same configuration picks up where it stopped.

A job's identity is its `run_key`: a digest of the validated configuration (every key that can change a
result: not `progress`, `resume`, the `tracking` keys or the cache folders; `threads` is part of it) and the code's git commit
(`-dirty` included: uncommitted edits are not told apart), logged as a tag. Each
held-out case, once finished, leaves its round records as a run artifact (`records/<case>.json`) as its last
write, after its curves, mask and pictures, so the records say which cases are done and whole. With `resume=true` (the default) a job looks
for a run with its key (under the same sweep parent, if any):

- a FINISHED one: nothing is computed; its summary is rebuilt from its records and returned;
- a RUNNING, KILLED or FAILED one (a job killed with `kill -9`, a lost node, a failed job): that run is
  reopened, not replaced, so every curve of the configuration stays in one run and the MLflow UI never
  shows a half run beside a whole one. Its finished cases are skipped, the case that was cut off is
  redone from its start (its curves not logged again if they reached the store before the kill: a curve
  is logged only when the run has none of it), and the run ends with the curves, summary and report of an
  uninterrupted run.

`resume=false` always starts a new run. A job holds a claim on its run while it lives
(`iunet_bench.tracking.claim`): the same configuration started again meanwhile is refused with a message
naming the holder, never merged into the same run; a killed job holds nothing, so its run resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

from iunet_bench.session.records import RoundRecord

RECORDS = "records"  # artifact folder of the finished cases' round records
# keys that cannot change a result: where things are written and how the job talks (`threads` can: the
# thread count changes the order of floating-point sums in TensorFlow's CPU kernels)
_NOT_IDENTITY = ("progress", "resume", "tracking", "data.cache_dir", "train.cache_dir")


def run_key(params: dict, commit: str) -> str:
    """16 hex digits naming one configuration (`JobConfig.params()`) of one code version."""
    identity = json.loads(json.dumps(params, default=str))  # a deep copy
    for dotted in _NOT_IDENTITY:
        *path, last = dotted.split(".")
        node = identity
        for part in path:
            node = node.get(part, {})
        node.pop(last, None)
    text = json.dumps({"config": identity, "code": commit}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sweep_key(name: str, overrides: list[str], commit: str) -> str:
    """16 hex digits naming one sweep command (its overrides) of one code version."""
    text = json.dumps({"sweep": name, "overrides": sorted(overrides), "code": commit})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def find_run(client, experiment_id: str, key: str, parent: str | None):
    """The newest run with this `run_key` (and this sweep parent, None for a single job), FINISHED ones
    first; None if there is none."""
    runs = client.search_runs(
        [experiment_id], f"tags.run_key = '{key}'", order_by=["attributes.start_time DESC"], max_results=50
    )
    runs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    return (finished or runs or [None])[0]


def records_to_json(records: list[RoundRecord]) -> str:
    def clean(v):  # NaN as null: strict JSON, read back as NaN
        return None if isinstance(v, float) and math.isnan(v) else v

    return json.dumps([{k: clean(v) for k, v in r.__dict__.items()} for r in records])


_FLOATS = {f.name for f in fields(RoundRecord) if f.type in ("float", float)}


def records_from_json(text: str) -> list[RoundRecord]:
    out = []
    for d in json.loads(text):
        d = {k: (float("nan") if v is None and k in _FLOATS else v) for k, v in d.items()}
        out.append(RoundRecord(**d))
    return out


def write_records(out: Path, case_id: str, records: list[RoundRecord]) -> Path:
    """The finished case's records as a file of the job folder (`records/<case>.json`; a class session's
    `records/<class>/<case>.json`)."""
    path = out / RECORDS / f"{case_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(records_to_json(records), encoding="utf-8")
    return path


def artifact_folder(folder: str, case_id: str) -> str:
    """The run's artifact folder of a case's file under `folder` (`records`, `masks`): `folder` itself, or
    for a class session `<class>/<case>` its class's subfolder, so that two classes of a case never share a name."""
    return "/".join([folder, *case_id.split("/")[:-1]])


def save_case(tracker, out: Path, case_id: str, records: list[RoundRecord]) -> None:
    """The finished case's records: a local file in the job folder and a run artifact (the done marker)."""
    tracker.log_artifact(write_records(out, case_id, records), artifact_folder(RECORDS, case_id))


@dataclass
class Previous:
    """What an earlier run of the same configuration left: its run, and the records of its finished cases
    (by case id)."""

    run: object
    cases: dict[str, list[RoundRecord]] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.run.info.status == "FINISHED"


def load_previous(client, run) -> Previous:
    prev = Previous(run)
    names = [a.path for a in client.list_artifacts(run.info.run_id, RECORDS)]
    if not names:
        return prev
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(client.download_artifacts(run.info.run_id, RECORDS, tmp))
        for path in sorted(folder.rglob("*.json")):  # records/<class>/<case>.json for class sessions
            records = records_from_json(path.read_text(encoding="utf-8"))
            if records:
                prev.cases[records[0].case_id] = records
    return prev


def logged_rounds(client, run_id: str, metric: str) -> int:
    """How many points of `metric` the run holds (0 when never logged)."""
    return len(client.get_metric_history(run_id, metric))
