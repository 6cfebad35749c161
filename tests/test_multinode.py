"""Multi-node for real on one machine: two network namespaces with their own addresses (tests/netns.py),
one torchrun agent per namespace rendezvousing over c10d, and a Ray cluster of a head and a worker
node whose sweep trials land on both.

Every subprocess has a timeout; a hang fails in bounded time and prints the agents' or nodes' logs.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import netns
import pytest
import torch
from conftest import REPO

pytestmark = pytest.mark.skipif(not netns.available(), reason="needs root and `ip netns` (network namespaces)")

JOB = REPO / "tests" / "multinode_job.py"
RDZV_PORT = "29400"  # every run has its own namespaces, so fixed ports cannot collide
RAY_PORT = "6390"
TIMEOUT_SEC = 180
SWEEP_TIMEOUT_SEC = 480  # a loaded 2-core machine (load 15-35) took 160-250 s


def node_env(node: netns.Node) -> dict:
    # gloo (and TensorPipe) would otherwise take the address the hostname resolves to, often 127.0.x.1,
    # which the other node cannot reach (measured here: "Connection refused" from remote=[127.0.0.1]).
    return os.environ | {
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "GLOO_SOCKET_IFNAME": node.interface,
        "TP_SOCKET_IFNAME": node.interface,
        "RAY_AUTH_MODE": "disabled",
    }


def finish(processes: dict[str, subprocess.Popen], logs: dict[str, Path], timeout: float) -> None:
    """Wait for all processes; on a timeout or a failure, kill the rest and fail with every log's tail."""
    try:
        for process in processes.values():
            process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    codes = {name: process.returncode for name, process in processes.items()}
    if any(codes.values()):
        tails = "\n".join(
            f"--- {name} (exit {codes.get(name, 0)}):\n{path.read_text()[-3000:]}" for name, path in logs.items()
        )
        pytest.fail(f"exit codes {codes}\n{tails}")


def spawn(node: netns.Node, argv: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as sink:
        return subprocess.Popen(
            node.command(*argv), env=node_env(node), cwd=REPO, stdout=sink, stderr=subprocess.STDOUT
        )


@pytest.fixture
def nodes():
    with netns.network_namespaces(2) as made:
        yield made


def test_torchrun_two_nodes_of_two_equals_one_node_of_four(nodes, tmp_path):
    head, other = nodes
    out = tmp_path / "multi.pt"
    rdzv_id = uuid.uuid4().hex
    processes, logs = {}, {}
    for node_rank, node in enumerate(nodes):
        argv = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "2",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{head.address}:{RDZV_PORT}", "--rdzv-id", rdzv_id,
            # is_host: the endpoint is no name of this machine (its hostname resolves to 127.0.0.1), so
            # torch's guess says "not the host" on both nodes and nobody would serve the store.
            "--rdzv-conf", f"is_host={int(node_rank == 0)},join_timeout=120",
            # --local-addr: what node 0 advertises as MASTER_ADDR (else its hostname, i.e. 127.0.0.1).
            "--local-addr", node.address,
            str(JOB), str(out),
        ]  # fmt: skip
        logs[node.name] = tmp_path / f"agent{node_rank}.log"
        processes[node.name] = spawn(node, argv, logs[node.name])
    finish(processes, logs, TIMEOUT_SEC)

    records = [json.loads((tmp_path / f"multi.rank{rank}.json").read_text()) for rank in range(4)]
    assert {record["world_size"] for record in records} == {4}
    assert {record["master_addr"] for record in records} == {head.address}
    # Ranks 0-1 ran in the head's namespace, ranks 2-3 in the other's: two nodes took part.
    for record in records:
        node = nodes[record["node_rank"]]
        assert record["rank"] // 2 == record["node_rank"]
        assert record["netns"] == f"net:[{node.inode()}]"

    single = tmp_path / "single.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "4", str(JOB), str(single)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # in this machine's own namespace, on loopback
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SEC, env=env, cwd=REPO)
    assert done.returncode == 0, done.stdout[-4000:]
    multi_weights, single_weights = (torch.load(path, weights_only=True) for path in (out, single))
    assert multi_weights.keys() == single_weights.keys()
    for key in multi_weights:
        torch.testing.assert_close(multi_weights[key], single_weights[key], rtol=0, atol=1e-6, msg=key)


def ray_start(node: netns.Node, temp_dir: Path, log: Path, *args: str, hide: Path | None = None) -> None:
    """`ray start` inside a node, with its own temp dir (its own session files and sockets). `hide`: a directory this
    node's Ray processes see empty (a tmpfs over it, in the mount namespace `ip netns exec` gives them): storage the
    other nodes share and this one lacks."""
    command = [str(Path(sys.executable).with_name("ray")), "start", "--node-ip-address", node.address]
    command += ["--num-cpus", "2", "--temp-dir", str(temp_dir), "--disable-usage-stats", *args]
    if hide is not None:
        command = ["sh", "-c", f'mount -t tmpfs tmpfs "{hide}" && exec "$0" "$@"', *command]
    with log.open("a") as sink:
        done = subprocess.run(
            node.command(*command), env=node_env(node), stdout=sink, stderr=subprocess.STDOUT, timeout=TIMEOUT_SEC
        )
    assert done.returncode == 0, log.read_text()[-4000:]


# The cluster's node ids and the address each node registered with.
NODE_ADDRESSES = (
    "import json, ray; ray.init(address='{}'); "
    "print(json.dumps({{n['NodeID']: n['NodeManagerAddress'] for n in ray.nodes()}}))"
)


@dataclass(frozen=True)
class RayCluster:
    head: netns.Node
    other: netns.Node
    address: str  # the head's GCS
    node_addresses: dict[str, str]  # Ray node id -> the address it registered with
    results: Path  # the main job's results directory: every node sees it, except its subdirectory BLIND
    logs: dict[str, Path]


BLIND = "blind"  # a sweep of this name writes where the worker node sees nothing


@pytest.fixture(scope="module")
def ray_cluster(quick_sweep, tmp_path_factory):
    """A Ray cluster of a head and a worker node, each in its own namespace, with 2 CPUs each. It shares the main
    job's results directory, as a cluster shares storage, except that the worker node sees the directory of the
    sweep named BLIND empty."""
    results = quick_sweep[0].parent
    (results / BLIND).mkdir()
    logs_dir = tmp_path_factory.mktemp("ray-cluster")
    logs = {"head": logs_dir / "head.log", "worker": logs_dir / "worker.log"}
    # Short temp dirs: Ray's Unix socket paths under them must stay within 107 characters.
    temp_dirs = [Path(tempfile.mkdtemp(prefix="dgray", dir="/tmp")) for _ in range(2)]
    with netns.network_namespaces(2) as (head, other):
        try:
            address = f"{head.address}:{RAY_PORT}"
            ray_start(head, temp_dirs[0], logs["head"], "--head", "--port", RAY_PORT, "--include-dashboard", "false")
            ray_start(other, temp_dirs[1], logs["worker"], "--address", address, hide=results / BLIND)
            listed = subprocess.run(
                head.command(sys.executable, "-c", NODE_ADDRESSES.format(address)),
                env=node_env(head), capture_output=True, text=True, timeout=TIMEOUT_SEC,
            )  # fmt: skip
            assert listed.returncode == 0, listed.stderr[-4000:]
            node_addresses = json.loads(listed.stdout.strip().splitlines()[-1])
            assert sorted(node_addresses.values()) == [head.address, other.address]
            yield RayCluster(head, other, address, node_addresses, results, logs)
        finally:
            netns.stop_processes([head, other])
            for temp_dir in temp_dirs:
                shutil.rmtree(temp_dir, ignore_errors=True)


def sweep_on(cluster: RayCluster, name: str, log: Path) -> subprocess.Popen:
    """Two trials of a sweep of the main job's artifacts (cache hits: the cluster runs the trials only), typed on the
    head. Two CPUs a node and a trial needs two (its one worker, run in the trial's process): one trial fills a
    node, so the two trials run at once only on different nodes."""
    argv = [
        sys.executable, "tune/sweep.py", "--quick", "--address", cluster.address, "--results-dir",
        str(cluster.results), "--name", name, "--knob-values", "0.5,1.0", "--include-real", "false",
        "--classifier.epochs", "1", "--workers-per-trial", "1", "--cpus-per-worker", "2",
        "--max-concurrent-trials", "2",
    ]  # fmt: skip
    return spawn(cluster.head, argv, log)


def test_ray_sweep_trials_land_on_both_nodes(ray_cluster, tmp_path):
    logs = ray_cluster.logs | {"sweep": tmp_path / "sweep.log"}
    finish({"sweep": sweep_on(ray_cluster, "two-nodes", logs["sweep"])}, logs, SWEEP_TIMEOUT_SEC)
    assert "cache hit, generator" in logs["sweep"].read_text()  # the main job's
    trials = [json.loads(path.read_text()) for path in ray_cluster.results.glob("two-nodes/trials/*/result.json")]
    assert len(trials) == 2
    head, other = ray_cluster.head.address, ray_cluster.other.address
    assert sorted(ray_cluster.node_addresses[trial["node"]["ray_node_id"]] for trial in trials) == [head, other]


def test_a_node_that_cannot_see_the_results_directory_fails_its_trial_in_one_line(ray_cluster, tmp_path):
    """The worker node sees the sweep's directory empty (no shared filesystem there): the trial Ray places on it
    fails at its start with one line naming the directory and the host, without a retry; the head's trial
    finishes, and the sweep says which failed and exits 2."""
    log = tmp_path / "sweep.log"
    sweep = sweep_on(ray_cluster, BLIND, log)
    assert sweep.wait(timeout=SWEEP_TIMEOUT_SEC) == 2, log.read_text()[-4000:]
    output = log.read_text()
    blind = ray_cluster.results / BLIND
    refused = f"{blind} is not shared with host "
    assert "1 trial(s) failed (" in output and refused in output, output[-4000:]
    assert "(.sweep-token missing): every node must see the results directory" in output
    assert not list((blind / "ray" / "tune").glob("*/error.txt"))  # a user error: no retry, no Ray traceback
    assert len(list(blind.glob("trials/*/result.json"))) == 1  # the head's trial
