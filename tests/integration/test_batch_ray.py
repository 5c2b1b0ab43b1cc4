"""The Ray Data integration on a local Ray against the local endpoint (``make test-ray``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from smruntime.auth import Credentials
from smruntime.local import LocalEndpoint

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from smruntime.bulk.ray import InvokeEndpointBatch  # noqa: E402

# Ray's own deprecation notices are not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*", "ignore::FutureWarning:ray.*")

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local test cluster: no token file in $HOME
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_map_batches_scores_every_row_with_per_row_errors(local_ray) -> None:
    with LocalEndpoint(credentials=(KEY, SECRET)) as endpoint:
        endpoint.faults("sum").fail_next(2, status=424)  # ModelError: not retried, so two rows fail
        rows = [{"body": json.dumps({"numbers": [i, 1]}), "id": i} for i in range(40)]
        scored = ray.data.from_items(rows).map_batches(
            InvokeEndpointBatch,
            fn_constructor_kwargs={
                "endpoint_name": "sum",
                "content_type": "application/json",
                "per_actor_concurrency": 4,
                "client_fields": {"region": "us-east-1", "endpoint_url": endpoint.url,
                                  "credentials": Credentials(KEY, SECRET)},
            },
            batch_size=8,
            concurrency=2,
        ).take_all()
        runs = endpoint.counters("sum").model_runs
    assert sorted(row["id"] for row in scored) == list(range(40))
    failed = [row for row in scored if row["error"] is not None]
    assert len(failed) == 2 and all(row["error"].startswith("ModelError") for row in failed)
    for row in scored:
        if row["error"] is None:
            assert json.loads(row["output"])["sum"] == row["id"] + 1
    assert runs == 38
