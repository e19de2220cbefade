"""The links a job prints to lead its user to the MLflow UI: the runs table and its charts, for a local store
(the `mlflow ui` command to start) or for a tracking server (its own address)."""

from __future__ import annotations

from iunet_bench.tracking.client import Client
from iunet_bench.tracking.tracker import store_uri

UI_ADDRESS = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
# The UI's "Model training" mode (its sidebar switch; MLflow 3.17 opens in "GenAI" mode, on an overview of
# traces) and the experiment's runs table; `compareRunsMode=CHART` is the same table's chart view.
RUNS_VIEW = "runs?workflowType=machine_learning"


def ui_hint(uri: str, experiment_id: str | None, run_id: str) -> str:
    """The lines a job prints to lead its user to the MLflow UI's runs table and its charts.

    MLflow 3.17's UI opens on a GenAI welcome page, and an experiment on a traces overview; the runs table
    (`#/experiments/<id>/runs?workflowType=machine_learning`) and its chart view (`&compareRunsMode=CHART`:
    the `dsc` curves by round) are what a benchmark user wants. A local store (sqlite, file, a database
    URL, its password masked) is served with `mlflow ui --backend-store-uri URI` at 127.0.0.1:5000; a
    tracking server (`http(s)://`) serves the UI at its own address. Without an experiment id only the
    command (or the server's address) is given.
    """
    lines = [f"MLflow run {run_id}."]
    if uri.startswith("databricks"):
        return lines[0] + " Open its experiment in the Databricks workspace."
    server = uri.startswith(("http://", "https://"))
    base = uri.rstrip("/") if server else UI_ADDRESS
    if server:
        lines[0] += " See all runs on the tracking server:"
    else:
        lines[0] += " See all runs with:"
        lines.append(f"  mlflow ui --backend-store-uri {_no_password(uri)}")
    if experiment_id is None:
        lines.append(f"  {base}" if server else f"and open {base}")
        return "\n".join(lines)
    runs = f"{base}/#/experiments/{experiment_id}/{RUNS_VIEW}"
    if not server:
        lines.append("and open the runs table, or its charts (dsc by round):")
    else:
        lines[0] = lines[0].removesuffix(":") + ", in its runs table or its charts (dsc by round):"
    lines.append(f"  {runs}")
    lines.append(f"  {runs}&compareRunsMode=CHART")
    return "\n".join(lines)


def _no_password(uri: str) -> str:
    """A database URL with its password masked (user:PASSWORD@host), so a job's log does not keep it."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest:
        return uri
    credentials, at, host = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    return f"{scheme}://{user}{':PASSWORD' if colon else ''}@{host}"


def experiment_of(uri: str, run_id: str) -> str | None:
    """The experiment id of a run (None when the store cannot tell: the hint then names no experiment)."""
    import mlflow

    try:
        return Client(mlflow.MlflowClient(store_uri(uri)), uri).get_run(run_id).info.experiment_id
    except Exception:
        return None
