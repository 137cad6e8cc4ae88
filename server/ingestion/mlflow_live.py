"""Live MLflow traces, read page by page through the real ``MlflowClient``.

Each ``mlflow.entities.Trace`` goes through ``to_dict()`` into the same converter the file reader
uses, so tags, assessments and span mapping behave identically whether traces come from a
``to_json()`` file or straight from a tracking store. Pages keep memory flat on big stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from server.ingestion.assemble import trace_or_error
from server.ingestion.mlflow_json import trace_from_mlflow_dict
from tools.errors import IngestError, InvalidInputError
from tools.models import Trace

__all__ = ["PAGE_SIZE", "read_mlflow_tracking"]

PAGE_SIZE = 100


def read_mlflow_tracking(uri: str, experiment: str | None = None, *, page_size: int = PAGE_SIZE,
                         since_ms: int | None = None) -> Iterator[Trace | IngestError]:
    """Yield every trace of ``experiment`` (name or id; all experiments when ``None``) at ``uri``
    (with ``since_ms``, only those that started then or later).

    Raises InvalidInputError at once for a store that does not exist, cannot be reached or has
    no such experiment; a trace that cannot be converted is later yielded as an IngestError.
    """
    _check_local_store(uri)
    from mlflow import MlflowClient  # heavy import: only pay for it when reading MLflow
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri)
    try:
        experiment_ids = _experiment_ids(client, experiment, uri)
    except MlflowException as exc:
        raise InvalidInputError(f"Could not read experiments from MLflow at '{uri}': {exc.message}. "
                                "Check the tracking URI and that the server is running.") from exc
    return _pages(client, uri, experiment_ids, page_size, since_ms)


def _pages(client: Any, uri: str, experiment_ids: list[str], page_size: int,
           since_ms: int | None = None) -> Iterator[Trace | IngestError]:
    """Page through each experiment oldest first; MLflow's own tie-breaker keeps pages stable."""
    from mlflow.exceptions import MlflowException

    for experiment_id in experiment_ids:
        token: str | None = None
        while True:
            try:
                page = client.search_traces(locations=[experiment_id], max_results=page_size, page_token=token,
                                            order_by=["timestamp_ms ASC"], include_spans=True,
                                            filter_string=None if since_ms is None
                                            else f"attributes.timestamp_ms >= {int(since_ms)}")
            except MlflowException as exc:
                yield IngestError(f"search_traces failed ({exc.message}); check the tracking server and retry.",
                                  source=uri, location=f"experiment {experiment_id}")
                break
            for trace in page:
                yield _convert(trace, uri)
            token = page.token
            if not token or not len(page):
                break


def _convert(trace: Any, uri: str) -> Trace | IngestError:
    trace_id = getattr(trace.info, "trace_id", "") or "(missing id)"
    return trace_or_error(uri, f"trace {trace_id}", lambda: trace_from_mlflow_dict(trace.to_dict()), fmt="MLflow")


def _experiment_ids(client: Any, experiment: str | None, uri: str) -> list[str]:
    if experiment is None:
        ids, token = [], None
        while True:
            page = client.search_experiments(max_results=1000, page_token=token)
            ids.extend(exp.experiment_id for exp in page)
            token = page.token
            if not token:
                return ids
    found = client.get_experiment_by_name(experiment)
    if found is None and experiment.isdigit():
        from mlflow.exceptions import MlflowException
        try:
            found = client.get_experiment(experiment)
        except MlflowException:
            found = None
    if found is None:
        names = sorted(exp.name for exp in client.search_experiments(max_results=50))
        shown = ", ".join(f"'{name}'" for name in names[:10]) + (" (and more)" if len(names) > 10 else "")
        raise InvalidInputError(f"No MLflow experiment named or numbered '{experiment}' at '{uri}'. "
                                f"Existing: {shown or 'none'}. Pass one of these, or omit it to read all experiments.")
    return [found.experiment_id]


def _check_local_store(uri: str) -> None:
    """MLflow silently creates an empty store at a missing local path; refuse instead, since a
    typo would otherwise 'succeed' with zero traces (and leave a stray database behind)."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
        if path and path != ":memory:" and not Path(path).exists():
            raise InvalidInputError(f"No MLflow database at '{path}' (from '{uri}'). Check the path; "
                                    "absolute paths need four slashes: sqlite:////abs/path/mlflow.db.")
    elif parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else uri
        if not Path(path).exists():
            raise InvalidInputError(f"No MLflow tracking directory at '{path}'. Check the path, or pass a "
                                    "sqlite:/// or http(s):// tracking URI.")
