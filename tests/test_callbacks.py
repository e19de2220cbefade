"""The job's case loop and its observers, on a real MLflow store but with stand-ins for the network and the
sessions (no training): what each observer hears, the order of a case's writes, and a resume after a kill
that logs every round once."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from iunet_bench.session.records import RoundRecord
from iunet_bench.tasks import callbacks, job
from iunet_bench.tasks.cases import CaseResult
from iunet_bench.tasks.prepare import JobSetup, Volumes
from iunet_bench.tracking import resume
from iunet_bench.tracking.tracker import Tracker, open_client
from iunet_bench.train.baseline import Progress

ROUNDS = 2
HELD_OUT = ["a", "b", "c"]


def volume(case_id):
    image = np.zeros((4, 4, 4), np.float32)
    meta = {"intensity": {"mode": "window", "lo": 0, "hi": 1}, "label_voxels": 8}
    return SimpleNamespace(case_id=case_id, image=image, spacing=(1.0, 1.0, 1.0), meta=meta)


def records_of(case_id):
    """A case's rounds: different values per case and round, as a session would leave."""
    base = 0.1 * (HELD_OUT.index(case_id) + 1)
    return [
        RoundRecord(case_id, r, base + 0.2 * r, 5.0 - r, effort={"strokes": r}, losses=[0.5] * r, nsd=0.5)
        for r in range(ROUNDS + 1)
    ]


class Dataset:
    """Writes a mask as a small file; `killed_at`: the case whose mask write is interrupted (Ctrl-C, SIGTERM)."""

    def __init__(self, killed_at=None):
        self.killed_at = killed_at

    def write_mask(self, vol, prediction, path):
        if vol.case_id == self.killed_at:
            raise KeyboardInterrupt
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(prediction.tobytes())
        return path


class Setup:
    """What `job._run_cases` uses of a `prepare.JobSetup`."""

    trains_baseline = True
    initial_predictions = JobSetup.initial_predictions  # the job's own: the baseline told to the observers

    def __init__(self, uri, dataset, failing=()):
        self.config = SimpleNamespace(
            progress=False,
            tracking=SimpleNamespace(uri=uri),
            train=SimpleNamespace(steps=3),
            session=SimpleNamespace(rounds=ROUNDS, pictures=1),
            protocol=None,
        )
        self.dataset, self.failing = dataset, failing

    def volumes(self):
        return Volumes([volume("t0"), volume("t1")], [volume(c) for c in HELD_OUT])

    def baseline(self, on_step):
        for i in range(3):
            on_step(Progress(i, 1.0 - 0.1 * i))
        return SimpleNamespace(
            model=None,
            key="k",
            hit=False,
            stopped_at=None,
            resumed_from=None,
            losses=[1.0, 0.9, 0.8],
            validation=[(3, 0.5)],
        )


@pytest.fixture
def sessions(monkeypatch):
    """Sessions that give `records_of` each case (a case of `setup.failing` fails), drawing one picture."""
    from iunet_bench.interactive import refiner
    from iunet_bench.tasks import cases

    monkeypatch.setattr(refiner, "predict_mask", lambda model, image: np.zeros(image.shape, np.uint8))

    def run_cases(setup, todo, initial):
        for vol, pictures in todo:
            if vol.case_id in setup.failing:
                yield vol, CaseResult(None, None, "RuntimeError: robot lost its pen", "trace")
                continue
            if pictures is not None:
                pictures.mkdir(parents=True, exist_ok=True)
                (pictures / "round_00.png").write_bytes(b"png")
            yield vol, CaseResult(records_of(vol.case_id), initial[vol.case_id] + 1)

    monkeypatch.setattr(cases, "run_cases", run_cases)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, open_client(uri)


def tracker_for(uri, client, tmp_path, reopen=None):
    return Tracker(
        uri, "callbacks", str(tmp_path / "mlartifacts"), run_name="t", reopen=reopen, client=client
    )


def histories(client, run_id) -> dict[str, list[tuple[int, float]]]:
    run = client.get_run(run_id)
    return {
        k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in run.data.metrics
    }


def artifacts(client, run_id, folder) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, folder)}


class Recorder(callbacks.CaseObserver):
    """Every event it hears, by hook."""

    def __init__(self):
        self.events = []
        for hook in callbacks.HOOKS:
            setattr(self, hook, lambda *args, hook=hook: self.events.append((hook, args)))


def test_hooks_reach_every_observer_in_list_order_and_a_misspelt_hook_is_an_error():
    heard = []

    class Named(callbacks.CaseObserver):
        def __init__(self, name):
            self.name = name

        def on_case_start(self, case_id):
            heard.append((self.name, case_id))

    observers = callbacks.Observers([Named("first"), callbacks.CaseObserver(), Named("second")])
    observers.on_case_start("a")
    observers.on_job_end(None)  # a hook nobody overrides: nothing happens
    assert heard == [("first", "a"), ("second", "a")]
    with pytest.raises(AttributeError):
        observers.on_case_stop("a")


def test_each_observer_hears_each_case_once_and_the_run_holds_each_round_once(store, tmp_path, sessions):
    uri, client = store
    out = tmp_path / "job"
    out.mkdir()
    setup = Setup(uri, Dataset(), failing={"b"})
    tracker = tracker_for(uri, client, tmp_path)
    failures = callbacks.Failures(tracker, out)
    recorder = Recorder()
    observers = callbacks.Observers([*job.job_observers(setup, tracker, out, failures), recorder])
    summary = job._case_loop(setup, setup.volumes(), {}, observers, out, failures.items)

    hooks = [h for h, _ in recorder.events]
    assert hooks == [
        "on_job_start",
        *["on_baseline_step"] * 3,
        "on_baseline_end",
        "on_case_start",
        "on_case_end",
        "on_case_start",
        "on_case_failed",
        "on_case_start",
        "on_case_end",
        "on_job_end",
    ]
    ends = [args[0] for h, args in recorder.events if h == "on_case_end"]
    assert [e.case_id for e in ends] == ["a", "c"]
    assert all(e.records == records_of(e.case_id) for e in ends)
    assert ends[0].pictures == out / "pictures" / "a" and ends[1].pictures is None  # session.pictures = 1
    assert [args[:2] for h, args in recorder.events if h == "on_case_failed"] == [
        ("b", "RuntimeError: robot lost its pen")
    ]
    (end,) = [args[0] for h, args in recorder.events if h == "on_job_end"]
    assert end.summary is summary and end.records == records_of("a") + records_of("c")

    logged = histories(client, tracker.run_id)
    for case in ("a", "c"):
        assert logged[f"dsc/{case}"] == [(r.round, pytest.approx(r.dsc)) for r in records_of(case)]
    assert "dsc/b" not in logged
    assert len(logged["dsc"]) == ROUNDS + 1 and len(logged["train_loss"]) == 3
    assert artifacts(client, tracker.run_id, "records") == {"records/a.json", "records/c.json"}
    assert artifacts(client, tracker.run_id, "masks") == {"masks/a.nii.gz", "masks/c.nii.gz"}
    assert artifacts(client, tracker.run_id, "pictures/a") == {"pictures/a/round_00.png"}
    assert {"cases.csv", "rounds.csv", "curves.png", "failures.json"} <= artifacts(
        client, tracker.run_id, None
    )
    assert [f["case_id"] for f in json.loads((out / "failures.json").read_text())] == ["b"]
    assert (
        summary.failures is failures.items and client.get_run(tracker.run_id).data.tags["failed_cases"] == "1"
    )


def test_a_kill_while_writing_a_mask_leaves_the_case_undone_and_the_resume_logs_every_round_once(
    store, tmp_path, sessions
):
    uri, client = store
    whole = tracker_for(uri, client, tmp_path)  # the reference: an uninterrupted run
    (tmp_path / "whole").mkdir()
    job._run_cases(Setup(uri, Dataset()), whole, tmp_path / "whole")

    out = tmp_path / "cut"
    out.mkdir()
    cut = tracker_for(uri, client, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        job._run_cases(Setup(uri, Dataset(killed_at="b")), cut, out)
    # the case cut off while its mask was written is not marked done, here or in the run; its curves are
    # logged (they come first), and the case before it is whole
    assert sorted(p.name for p in (out / "records").iterdir()) == ["a.json"]
    assert artifacts(client, cut.run_id, "records") == {"records/a.json"}
    assert artifacts(client, cut.run_id, "masks") == {"masks/a.nii.gz"}
    assert len(client.get_metric_history(cut.run_id, "dsc/b")) == ROUNDS + 1

    previous = resume.load_previous(client, client.get_run(cut.run_id))
    assert set(previous.cases) == {"a"}
    again = tracker_for(uri, client, tmp_path, reopen=cut.run_id)
    summary = job._run_cases(Setup(uri, Dataset()), again, out, previous)
    assert summary.curve == pytest.approx(
        [np.mean([records_of(c)[r].dsc for c in HELD_OUT]) for r in range(ROUNDS + 1)]
    )
    resumed, reference = histories(client, cut.run_id), histories(client, whole.run_id)
    assert set(resumed) == set(reference)
    for key in reference:  # every round once: the same steps and values as the uninterrupted run
        assert [s for s, _ in resumed[key]] == [s for s, _ in reference[key]], key
        if "seconds" not in key:
            assert [v for _, v in resumed[key]] == pytest.approx([v for _, v in reference[key]]), key
    assert artifacts(client, cut.run_id, "records") == {f"records/{c}.json" for c in HELD_OUT}
    assert artifacts(client, cut.run_id, "masks") == {f"masks/{c}.nii.gz" for c in HELD_OUT}
