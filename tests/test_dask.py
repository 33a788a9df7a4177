"""Scale-out: the flow's batches on a two-worker Dask cluster give the sequential outputs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import api_at
from .test_incremental import (
    Assets,
    comparable,
    corpus_without_reviews,
    make_assets,
    manifest,
    output_folder,
    outputs,
    run_flow,
    start_test_server,
    task_states,
)

pytest.importorskip("prefect_dask")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="session")
def project_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_test_server(tmp_path_factory)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    return make_assets(tmp_path_factory)


@pytest.fixture
def on_server(project_server: str) -> Iterator[str]:
    with api_at(project_server):
        yield project_server


def test_dask_cluster_gives_the_same_outputs_as_one_worker(on_server, tmp_path, assets):
    corpus = corpus_without_reviews(tmp_path / "corpus")
    sequential = output_folder(tmp_path / "sequential", assets.model)
    on_dask = output_folder(tmp_path / "dask", assets.model)

    run_flow(corpus, sequential, assets.codebook, workers=1)
    # Worker processes, as on a real cluster: tasks, arguments and results are pickled,
    # and each worker loads the model from the output folder itself.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0"
                                  ) as cluster:
        summary = run_flow(corpus, on_dask, assets.codebook,
                           dask_address=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2

    assert summary["failed_batches"] == []
    assert summary["incremental"]["dask_address"] == cluster.scheduler_address
    assert summary["incremental"]["files_read"] == summary["counts"]["files"] == 19
    done = summary["incremental"]
    states = task_states(summary["run_id"], {"ingest-batch": done["ingest_batches"],
                                             "code-batch": done["code_batches"]})
    assert set(states["ingest-batch"]) == set(states["code-batch"]) == {"Completed"}
    assert outputs(on_dask) == outputs(sequential)
    assert comparable(manifest(on_dask)) == comparable(manifest(sequential))


def test_worker_processes_give_the_same_outputs_as_one_worker(on_server, tmp_path, assets):
    corpus = corpus_without_reviews(tmp_path / "corpus")
    one = output_folder(tmp_path / "one", assets.model)
    two = output_folder(tmp_path / "two", assets.model)
    run_flow(corpus, one, assets.codebook, batch_size=2, workers=1)
    summary = run_flow(corpus, two, assets.codebook, batch_size=2, workers=2)
    assert summary["incremental"]["workers"] == 2 and summary["failed_batches"] == []
    assert summary["incremental"]["files_read"] == summary["counts"]["files"] == 19
    assert outputs(two) == outputs(one)
