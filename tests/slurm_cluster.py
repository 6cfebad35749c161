"""A real, private Slurm cluster on this host for the tests: munged, slurmctld and one or two slurmd.

Every daemon runs in the foreground as a child of the test process (pids recorded, stopped by pid),
with its key, socket, state, spool, logs and ports inside one temporary directory, so it touches
nothing in /etc or /run and cannot meet another cluster on the same machine. Needs root (slurmd
starts job steps as the submitting user) and Debian's `slurm-wlm` and `munge` packages.
"""

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

APT_LINE = "make system-packages"  # as root: apt-get install slurm-wlm munge dataset-fashion-mnist
DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")


def missing_programs() -> list[str]:
    """The Slurm/munge programs not on PATH (the daemons live in /usr/sbin)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [name for name in DAEMONS if shutil.which(name, path=path) is None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SlurmCluster:
    """A running test cluster; `env` points the Slurm client commands at it (SLURM_CONF)."""

    root: Path
    node_names: list[str]
    cpus_per_node: int
    env: dict = field(default_factory=dict)
    processes: list = field(default_factory=list)

    def run(self, *command: str, timeout: float = 30) -> str:
        """A Slurm client command against this cluster; its stdout (raises with stderr on failure)."""
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=self.env)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr}\n{self.logs()}")
        return done.stdout

    def logs(self) -> str:
        """The tail of every daemon log, for failure messages."""
        parts = []
        for log in sorted(self.root.glob("*.log")):
            parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    def job_field(self, job_id: str, key: str) -> str:
        """One field of `scontrol show job` (no accounting database here, so no sacct)."""
        out = self.run("scontrol", "show", "job", "-o", job_id)
        return out.split(f" {key}=")[1].split()[0]

    def job_state(self, job_id: str) -> str:
        """PENDING/RUNNING/COMPLETED/FAILED/..."""
        return self.job_field(job_id, "JobState")

    def wait_job(self, job_id: str, timeout: float) -> str:
        """Wait until the job leaves PENDING/RUNNING/COMPLETING; its final state. Cancels it on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
                return state
            time.sleep(1)
        subprocess.run(["scancel", job_id], env=self.env, timeout=30)
        return f"TIMEOUT (still {state} after {timeout:.0f} s)"

    def stop(self) -> None:
        """Stop the daemons this cluster started, by pid, newest first (their logs stay)."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=15)


def _slurm_conf(root: Path, host: str, node_names: list[str], cpus: int, ports: dict, first_job_id: int) -> str:
    memory_mb = 2048
    lines = [
        "ClusterName=distgantest",
        f"FirstJobId={first_job_id}",
        f"SlurmctldHost={host}",
        f"SlurmctldPort={ports['ctld']}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root / 'munge.socket'}",
        # No cgroups in a container: processes are tracked by parent pid, tasks are not bound.
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "MpiDefault=none",
        "ReturnToService=2",
        "SchedulerType=sched/builtin",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool' / '%n'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd-%n.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd-%n.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "InactiveLimit=0",
        "KillWait=5",
        "MinJobAge=600",  # keep finished jobs visible to `scontrol show job` for the test
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
    ]
    for name in node_names:
        lines.append(
            f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={ports[name]} "
            f"CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN"
        )
    lines.append(f"PartitionName=test Nodes={','.join(node_names)} Default=YES MaxTime=30 State=UP OverSubscribe=NO")
    return "\n".join(lines) + "\n"


def start_cluster(
    root: Path, num_nodes: int = 2, cpus_per_node: int = 2, first_job_id: int = 1, timeout: float = 60
) -> SlurmCluster:
    """munged + slurmctld + `num_nodes` slurmd (one host, distinct ports), all nodes idle on return."""
    host = socket.gethostname().split(".")[0]
    names = [host] if num_nodes == 1 else [f"node{i}" for i in range(num_nodes)]
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / "spool" / name).mkdir(exist_ok=True)
    ports = {"ctld": free_port()} | {name: free_port() for name in names}
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, host, names, cpus_per_node, ports, first_job_id))
    env = os.environ | {"SLURM_CONF": str(conf), "PATH": os.environ["PATH"] + ":/usr/sbin:/sbin"}
    cluster = SlurmCluster(root=root, node_names=names, cpus_per_node=cpus_per_node, env=env)
    try:
        key = root / "munge" / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True, env=env)
        os.chmod(root / "munge", 0o700)
        # --force: munged refuses a key/socket directory it considers insecure (e.g. under /tmp) otherwise.
        cluster.processes.append(_daemon(env, root, "munged", [
            "munged", "--foreground", "--force", f"--key-file={key}", f"--socket={root / 'munge.socket'}",
            f"--pid-file={root / 'munged.pid'}", f"--seed-file={root / 'munge' / 'seed'}",
            f"--log-file={root / 'munged.log'}",
        ]))  # fmt: skip
        _wait(lambda: (root / "munge.socket").exists(), timeout, "munged socket", cluster)
        # -D: foreground (we hold the pid); -c: clear state left by an earlier run; -i: ignore it if any.
        cluster.processes.append(_daemon(env, root, "slurmctld", ["slurmctld", "-D", "-c", "-i"]))
        for name in names:
            cluster.processes.append(_daemon(env, root, f"slurmd-{name}", ["slurmd", "-D", "-N", name]))
        _wait(lambda: _all_idle(cluster), timeout, f"nodes {names} idle", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _daemon(env: dict, root: Path, name: str, command: list[str]) -> subprocess.Popen:
    out = open(root / f"{name}.out", "w")  # noqa: SIM115 -- the daemon keeps it open for its life
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _all_idle(cluster: SlurmCluster) -> bool:
    for process in cluster.processes:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited {process.returncode}\n{cluster.logs()}")
    done = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, env=cluster.env)
    states = dict(line.split() for line in done.stdout.splitlines() if line.strip())
    return done.returncode == 0 and all(states.get(name) == "idle" for name in cluster.node_names)


def _wait(ready, timeout: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}\n{cluster.logs()}")
        time.sleep(0.5)
