"""Steps inside real Dask worker processes, on a shared lake (PostgreSQL catalog + a local-folder store).

Workers get the lake's path and catalog URL, open the lake once per process
and call a plain ``@limnos.step``. A second map over the same inputs must be
20 cache hits: the step body never runs again (a counter file and the step
rows say so), and every output's lineage leads back to its input.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os

import pytest

import limnos

distributed = pytest.importorskip("distributed")

N = 20
TIMEOUT = 240  # seconds for any one wait on the cluster; the whole test is killed after 2x


@limnos.step
def scale(src: limnos.File, factor: int) -> dict:  # type: ignore[type-arg]
    """Multiply the numbers in a JSON file; appends one line per real execution to a counter file."""
    with open(os.environ["LIMNOS_TEST_DASK_COUNTER"], "a") as counter:
        counter.write(f"{os.getpid()} {src.name}\n")
    values = json.loads(src.read_text())
    return {"source": src.name, "values": [v * factor for v in values]}


_lakes: dict[tuple[str, str], limnos.Lake] = {}


def run_task(lake_path: str, catalog_url: str, ref: str, factor: int) -> dict:  # type: ignore[type-arg]
    """What a worker runs: open the shared lake (once per process), call the step, return plain data."""
    key = (lake_path, catalog_url)
    if key not in _lakes:
        _lakes[key] = limnos.open(lake_path, catalog=catalog_url)
    lake = _lakes[key]
    call = scale.call(lake.get(ref), factor)
    return {"hit": call.hit, "step": call.step_id, "file": call.files[0].id, "pid": os.getpid()}


@pytest.fixture
def watchdog():  # type: ignore[no-untyped-def]
    """The test must never hang CI: dump every thread's stack and exit if it runs far too long."""
    faulthandler.dump_traceback_later(2 * TIMEOUT, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.mark.slow
def test_map_a_step_over_20_inputs_on_a_local_cluster(tmp_path, pg_database, monkeypatch, watchdog):
    counter = tmp_path / "executions.txt"
    counter.touch()
    # Worker processes are spawned after this and inherit the environment.
    monkeypatch.setenv("LIMNOS_TEST_DASK_COUNTER", str(counter))
    lake = limnos.init(str(tmp_path / "shared-lake"), catalog=pg_database)
    refs = []
    for i in range(N):
        with lake.create(f"raw/{i:02d}.json") as w:
            w.write_text(json.dumps([i, i + 1, i + 2]))
        refs.append(w.file.ref)

    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster, timeout=TIMEOUT) as client:

        def run_all() -> list[dict]:  # type: ignore[type-arg]
            futures = client.map(run_task, [lake.path] * N, [pg_database] * N, refs, [3] * N, pure=False)
            distributed.wait(futures, timeout=TIMEOUT)
            return client.gather(futures)  # type: ignore[no-any-return]

        first = run_all()
        assert [r["hit"] for r in first] == [False] * N
        assert os.getpid() not in {r["pid"] for r in first}  # computed in the worker processes
        assert len(counter.read_text().splitlines()) == N
        assert len(lake.steps(failed=False)) == N

        second = run_all()
        assert [r["hit"] for r in second] == [True] * N
        assert len(counter.read_text().splitlines()) == N  # the body never ran again
        assert len(lake.steps()) == N  # no new executions recorded
        assert [r["file"] for r in second] == [r["file"] for r in first]
        assert [r["step"] for r in second] == [r["step"] for r in first]

    # Complete lineage: every output hangs below its step and its one input.
    for i, result in enumerate(first):
        out = lake.get(result["file"])
        assert json.loads(out.read_text()) == {"source": f"raw/{i:02d}.json", "values": [3 * i, 3 * i + 3, 3 * i + 6]}
        graph = lake.lineage(out)
        step_node = graph.nodes[f"s:{result['step']}"]
        assert step_node["function"] == "test_steps_dask.scale" and step_node["params"]["factor"] == 3
        assert graph.parents(graph.root) == [f"s:{result['step']}"]
        assert [graph.nodes[k]["name"] for k in graph.parents(f"s:{result['step']}")] == [f"raw/{i:02d}.json"]
        assert lake.downstream(f"raw/{i:02d}.json") == [out]
    assert len({s.host for s in lake.steps()}) == 1 and lake.stale() == []
    assert lake.fsck().ok
    lake.close()
