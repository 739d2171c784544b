"""A throwaway one-node SLURM cluster for tests: ``munged``, ``slurmctld`` and ``slurmd`` from the
distribution's packages (Debian: ``apt-get install slurm-wlm munge``), started in a temporary folder
of their own, on free ports, with a munge key and socket of their own: nothing under /etc is read or
written. Every client command (sbatch, squeue, scancel, scontrol) and every job finds the cluster
through ``SLURM_CONF`` in ``Cluster.env``; submitit's calls inherit it.

``start()`` raises ``Unavailable`` (the reason a test skips) where the packages are not installed or
the daemons cannot run (slurmd launches jobs as their users: it needs root); a cluster that should
start and does not is an error with the daemons' logs. ``Cluster.stop()`` cancels its jobs and stops
exactly the three daemons it started, by their process ids.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo", "srun")


class Unavailable(Exception):
    """This machine cannot run the cluster (the message says why)."""


# how long SLURM keeps a requeued job back (default 120 s): a job started before its old credential has
# expired is killed ("Job credential revoked"), so tests wait for this rather than force an earlier start
CRED_EXPIRE_S = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/usr/bin", "/sbin") if (p := Path(d) / name).is_file()), None
    )


@dataclass
class Cluster:
    folder: Path
    conf: Path
    node: str
    env: dict
    processes: dict = field(default_factory=dict)  # daemon name -> Popen

    def run(self, *command: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster."""
        return subprocess.run(
            list(command), env=self.env, capture_output=True, text=True, timeout=timeout, check=check
        )

    def jobs(self) -> list[str]:
        """Ids of the jobs in the queue (array tasks one by one: ``<array job>_<task>``)."""
        done = self.run("squeue", "-h", "-r", "-o", "%i", check=False)
        return done.stdout.split() if done.returncode == 0 else []

    def node_state(self) -> str:
        done = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%T", check=False)
        return done.stdout.strip().lower() if done.returncode == 0 else ""

    def logs(self) -> str:
        parts = []
        for path in (
            self.folder / "munge" / "munged.log",
            *(self.folder / f"{n}.{e}" for n in DAEMONS for e in ("log", "out")),
        ):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-25:]
                parts.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self, timeout: float = 60) -> None:
        """Cancels the jobs still queued, then stops the daemons this cluster started (slurmd,
        slurmctld, munged, by their process ids) and removes its folder."""
        try:
            if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
                jobs = self.jobs()
                if jobs:
                    self.run("scancel", *jobs, check=False)
                    deadline = time.monotonic() + timeout
                    while self.jobs() and time.monotonic() < deadline:
                        time.sleep(0.5)
        finally:
            for name in reversed(DAEMONS):
                process = self.processes.get(name)
                if process is None or process.poll() is not None:
                    continue
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=30)
            shutil.rmtree(self.folder, ignore_errors=True)


def slurm_conf(folder: Path, node: str, socket_path: Path, cpus: int, memory_mb: int) -> str:
    return f"""\
# a one-node test cluster (tests/helpers/slurm_cluster.py)
ClusterName=rnnbench-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket_path},cred_expire={CRED_EXPIRE_S}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
KillWait=10
InactiveLimit=0
SchedulerType=sched/backfill
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def check_available() -> dict:
    """The daemons' and clients' paths, or ``Unavailable`` saying what is missing."""
    found = {name: find(name) for name in (*DAEMONS, *CLIENTS)}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise Unavailable(
            f"SLURM/munge is not installed ({', '.join(missing)} not found; apt-get install slurm-wlm munge)"
        )
    if os.geteuid() != 0:
        raise Unavailable("starting slurmd (which runs jobs as their users) needs root")
    try:
        pwd.getpwnam("munge")
    except KeyError:
        raise Unavailable("there is no munge user (the munge package creates it)") from None
    return found


def start(cpus: int = 2, memory_mb: int = 2048, timeout: float = 120) -> Cluster:
    """Starts munged, slurmctld and slurmd; returns once the node is idle."""
    paths = check_available()
    folder = Path(tempfile.mkdtemp(prefix="rnnbench-slurm-"))
    folder.chmod(0o755)
    munge = pwd.getpwnam("munge")
    munge_dir = folder / "munge"
    munge_dir.mkdir()
    munge_dir.chmod(0o755)  # munged: its socket folder must be searchable by every user
    os.chown(munge_dir, munge.pw_uid, munge.pw_gid)
    key = munge_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chown(key, munge.pw_uid, munge.pw_gid)
    key.chmod(0o400)
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    node = socket.gethostname().split(".")[0]
    socket_path = munge_dir / "munge.socket"
    conf = folder / "slurm.conf"
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    conf.write_text(slurm_conf(folder, node, socket_path, cpus, min(memory_mb, total_mb // 2)))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    for name in list(env):  # a surrounding job's settings would steer sbatch and srun
        if name.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")) and name != "SLURM_CONF":
            env.pop(name)
    cluster = Cluster(folder, conf, node, env)
    try:
        with (folder / "munged.out").open("ab") as log:
            cluster.processes["munged"] = subprocess.Popen(
                [
                    paths["munged"],
                    "--foreground",
                    f"--socket={socket_path}",
                    f"--key-file={key}",
                    f"--pid-file={munge_dir}/munged.pid",
                    f"--seed-file={munge_dir}/munged.seed",
                    f"--log-file={munge_dir}/munged.log",
                ],
                user=munge.pw_uid,
                group=munge.pw_gid,
                extra_groups=[],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                cwd=munge_dir,
                env=env,
            )
        wait_for(lambda: socket_path.exists(), cluster, "munged's socket", timeout)
        for name, args in (
            ("slurmctld", ["-D", "-c", "-f", str(conf)]),
            ("slurmd", ["-D", "-f", str(conf), "-N", node]),
        ):
            with (folder / f"{name}.out").open("ab") as out:  # slurmd registers once slurmctld answers
                cluster.processes[name] = subprocess.Popen(
                    [paths[name], *args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=folder,
                )
        wait_for(lambda: cluster.node_state() == "idle", cluster, f"node {node} to be idle", timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def wait_for(ready, cluster: Cluster, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited ({process.returncode}) while waiting for {what}\n" + cluster.logs()
                )
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}\n" + cluster.logs())
        time.sleep(0.25)
