"""The cluster group of ``conveyor bench`` runs end to end on a local Redis Cluster.

It runs only with ``--cluster URL``: without it the group is left out with a note, and a
URL that is not ``redis+cluster://`` is refused before anything runs.
"""

from __future__ import annotations

import collections
import multiprocessing
import re
from pathlib import Path
from typing import Any

import pytest
import redis

from conveyor.bench import cluster, read_json
from conveyor.bench._cluster_nodes import pick_names, read_topology, slot_of
from conveyor.cli import main
from tests.backends.cluster_backend import ClusterSetup, cluster_setup

pytestmark = pytest.mark.timeout(120)

__all__ = ["cluster_setup"]


def _leftovers(url: str) -> list[str]:
    # The keys of the benchmark's queues still on any primary of the cluster.
    found = []
    for host, port in read_topology(url).primaries:
        client: Any = redis.Redis(host=host, port=port, decode_responses=True)
        try:
            found += list(client.scan_iter(match="conveyor:{bench-cluster-*", count=1000))
        finally:
            client.close()
    return found


def test_the_cluster_group_compares_3_primaries_with_1_and_cleans_up(
    cluster_setup: ClusterSetup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = cluster_setup.url()
    status = main(
        [
            "bench",
            "--group",
            "cluster",
            "--cluster",
            url,
            "--scale",
            "0.01",
            "--rounds",
            "1",
            "--json",
            str(tmp_path / "run.json"),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "failed" not in out
    spread = "12 queues x 8+8 tasks, 4 processes: 3 primaries"
    assert re.search(rf"{re.escape(spread)}\s+conveyor\s+[\d,]+\n", out)
    assert re.search(r"conveyor, 1 primary\s+[\d,]+\s+[\d.]+x\s+>= 1x\s+(yes|NO)", out)
    assert re.search(r"1 queue x 8\+8 tasks: one queue's ceiling\s+conveyor\s+[\d,]+\n", out)
    assert re.search(r"conveyor, 4 processes\s+[\d,]+\s+[\d.]+x\n", out)
    # The CPU each layout used: every primary of it, the other nodes, the clients.
    layout = re.search(r"note: cluster, 12 queues x 8\+8 tasks, on 3 primaries .*", out)
    assert layout is not None
    assert len(re.findall(r"\d+\.\d+\.\d+\.\d+:\d+ \d+\.\d\d", layout.group())) == 3
    assert "4 client processes" in layout.group()
    assert "Capped by" in layout.group()
    assert re.search(r"note: cluster, 12 queues x 8\+8 tasks, on 1 primary .*primary \S+ ", out)
    assert "note: cluster, 1 queue x 8+8 tasks, 1 process" in out
    report = read_json(tmp_path / "run.json")
    assert {row.group for row in report.rows} == {"cluster"}
    assert len(report.rows) == 4
    assert not [row for row in report.rows if row.error is not None or row.items_per_s is None]
    assert sum("cores busy" in note for note in report.notes) == 4
    assert _leftovers(url) == []
    assert multiprocessing.active_children() == []


def test_the_layouts_put_each_queue_on_the_primary_it_was_picked_for(
    cluster_setup: ClusterSetup,
) -> None:
    topology = read_topology(cluster_setup.url())
    first, *others = topology.primaries
    assert len(others) >= 2
    one = pick_names(topology, "bench-cluster-layout", [first] * 12)
    assert {topology.primary_of(slot_of(name)) for name in one} == {first}
    spread = pick_names(topology, "bench-cluster-layout", list(topology.primaries[:3]) * 4)
    on = collections.Counter(topology.primary_of(slot_of(name)) for name in spread)
    assert sorted(on.values()) == [4, 4, 4]
    assert len(set(spread)) == 12
    # 12 queues in 4 processes: 3 queues each, with all 8 + 8 tasks of a queue.
    works = cluster._share(spread, 1000, 4)
    assert [len(work) for work in works] == [3, 3, 3, 3]
    assert all(len(puts) == len(gets) == 8 for work in works for _, puts, gets in work)
    assert sum(sum(puts) for work in works for _, puts, _ in work) == 1000
    # 1 queue in 4 processes: 2 producers and 2 consumers in each.
    works = cluster._share(one[:1], 100, 4)
    assert [(len(puts), len(gets)) for [(_, puts, gets)] in works] == [(2, 2)] * 4
    assert sum(sum(gets) for [(_, _, gets)] in works) == 100


def test_the_cluster_group_without_cluster_is_left_out_with_a_note(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = main(["bench", "--group", "cluster", "--json", str(tmp_path / "run.json")])
    assert status == 0
    assert "note: cluster left out: it needs --cluster URL" in capsys.readouterr().out
    report = read_json(tmp_path / "run.json")
    assert report.rows == []
    assert any(note.startswith("cluster left out: it needs --cluster") for note in report.notes)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("redis://:secret@127.0.0.1:6379/0", "--cluster takes the redis+cluster:// URL"),
        ("garbage", "--cluster takes the redis+cluster:// URL"),
        ("redis+cluster://127.0.0.1:99999", "bad node address '127.0.0.1:99999'"),
        ("redis+cluster://:secret@[::1", "is not a URL"),
    ],
)
def test_a_cluster_url_that_is_not_one_is_refused_before_anything_runs(
    url: str, said: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # All groups: the memory group would run first if the URL were not checked at once.
    assert main(["bench", "--cluster", url, "--json", str(tmp_path / "run.json")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("conveyor bench: ")
    assert said in captured.err
    assert "secret" not in captured.err
    assert not (tmp_path / "run.json").exists()
