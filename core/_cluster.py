"""A persistent Ray cluster for a workstation or a Slurm allocation, secure by default.

``minjiang cluster start`` runs ``ray start --head`` with every listener on loopback
(node IP ``127.0.0.1``, the dashboard and the metrics endpoints included), token
authentication with a token file of mode 0600 in a 0700 folder, and Ray's temp and log
folders 0700; it records the cluster in a state file that later ``run``, ``plan``,
``submit`` and ``job`` calls find, so they attach to it instead of starting their own
Ray. ``minjiang cluster sbatch`` writes a batch script that does the same across a
Slurm allocation, with ports derived from the job id.

State lives in ``$MINJIANG_CLUSTER_DIR``, else ``$XDG_STATE_HOME/minjiang/cluster``,
else ``~/.local/state/minjiang/cluster`` (tests point the variable at a temp folder).

Ray only binds its servers to loopback when the node IP is loopback, and ``ray start``
turns ``--node-ip-address 127.0.0.1`` into the host's address unless Ray believes it
runs a single-node cluster: the switch is ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(Ray's own setting for macOS and Windows), set for the Ray processes and, while it
connects, for the driver (:func:`loopback_ray`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minjiang.core.errors import ClusterError, InfeasibleTaskError, ParameterError

if TYPE_CHECKING:
    import psutil

__all__ = [
    "CLUSTER_DIR_ENV",
    "ClusterError",
    "ClusterState",
    "InfeasibleTaskError",
    "NodeResources",
    "Ports",
    "check_tasks_feasible",
    "cluster_dir",
    "cluster_processes",
    "ensure_token",
    "find_running",
    "http_node_table",
    "listening_sockets",
    "loopback_ray",
    "node_table",
    "sbatch_script",
    "start_cluster",
    "stop_cluster",
]

#: Environment variable naming the folder of the cluster state (tests isolate with it).
CLUSTER_DIR_ENV = "MINJIANG_CLUSTER_DIR"
STATE_FILE = "cluster.json"
TOKEN_FILE = "auth_token"
LOOPBACK = "127.0.0.1"
#: Idle seconds after which a warm worker exits (``cluster start --warm-idle``).
WARM_IDLE_S = 900.0
#: Ray's switch for a single-node cluster: with it, a loopback node IP stays loopback.
_SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


# ----------------------------------------------------------------------------- state


def cluster_dir() -> Path:
    """Where the cluster state, token and logs of ``minjiang cluster`` live."""
    env = os.environ.get(CLUSTER_DIR_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "minjiang" / "cluster"


def _private_dir(path: Path) -> Path:
    """``path`` created if needed and made 0700 (owner only)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)
    return path


def ensure_token(directory: Path) -> Path:
    """The token file in ``directory`` (0700), created with a fresh random token (0600)
    when missing and tightened to 0600 when its mode is looser."""
    _private_dir(directory)
    path = directory / TOKEN_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    elif stat.S_IMODE(path.stat().st_mode) != 0o600:
        path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Ports:
    """The ports of one Ray node; nothing is left for Ray to pick at random."""

    gcs: int
    dashboard: int
    client: int
    node_manager: int
    object_manager: int
    agent_http: int
    agent_grpc: int
    runtime_env_agent: int
    metrics: int
    autoscaler_metrics: int
    dashboard_metrics: int
    min_worker: int
    max_worker: int

    @classmethod
    def free(cls, host: str = LOOPBACK, workers: int = 200) -> Ports:
        """Ports free on ``host`` now (the worker range is a free block of ``workers``)."""
        socks = []
        try:
            for _ in range(11):
                s = socket.socket()
                s.bind((host, 0))
                socks.append(s)
            ports = [s.getsockname()[1] for s in socks]
        finally:
            for s in socks:
                s.close()
        low = _free_block(host, workers, avoid=set(ports))
        return cls(*ports, min_worker=low, max_worker=low + workers - 1)  # type: ignore[misc]

    @classmethod
    def for_job(cls, job_id: int, *, worker_node: bool = False) -> Ports:
        """The ports of Slurm job ``job_id``: a block of 256 from 10000 (below Linux's
        ephemeral range), picked by the job id, so jobs sharing a node do not collide;
        worker nodes use the upper half, so a head and a worker can share a host.
        ``sbatch_script`` computes the same in bash."""
        base = 10000 + (job_id % 88) * 256
        off = 16 if worker_node else 0
        low = base + (144 if worker_node else 32)
        return cls(*(base + off + i for i in range(11)), min_worker=low, max_worker=low + 111)  # type: ignore[misc]


def _free_block(host: str, size: int, avoid: set[int]) -> int:
    for low in range(30000, 32768 - size, size):
        if any(p in avoid for p in range(low, low + size)):
            continue
        if all(_port_free(host, p) for p in range(low, low + size, max(1, size // 8))):
            return low
    raise ClusterError(f"no block of {size} free ports between 30000 and 32767 on {host}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class ClusterState:
    """What ``minjiang cluster start`` recorded about the cluster it started."""

    address: str  #: GCS address, host:port (what ``ray.init(address=...)`` takes)
    dashboard: str  #: job API and dashboard, http://host:port
    token_path: str  #: "" when started with --insecure-no-token
    temp_dir: str
    node_ip: str
    num_cpus: int
    num_gpus: int
    started: float
    pids: tuple[tuple[int, float], ...] = ()  #: (pid, create_time) of the Ray processes
    insecure: tuple[str, ...] = ()
    ports: dict[str, int] = field(default_factory=dict)
    #: warm workers the Ray executor keeps on it (0: none; ``core/_warm.py``)
    warm_workers: int = 0
    #: idle seconds after which a warm worker exits
    warm_idle_s: float = 0.0
    #: unix socket of the run service (``core/_service.py``); "" when none was started
    run_socket: str = ""

    def save(self, directory: Path) -> Path:
        _private_dir(directory)
        path = directory / STATE_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=1)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, directory: Path | None = None) -> ClusterState | None:
        """The recorded state, or None when there is none (or it is unreadable)."""
        path = (directory or cluster_dir()) / STATE_FILE
        try:
            data = json.loads(path.read_text())
            data["pids"] = tuple(tuple(p) for p in data.get("pids", ()))
            data["insecure"] = tuple(data.get("insecure", ()))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def alive(self) -> bool:
        """Whether the head's GCS answers on its port."""
        host, _, port = self.address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return True
        except (OSError, ValueError):
            return False

    def environment(self) -> dict[str, str]:
        """Variables a driver or a job client needs to talk to this cluster."""
        env = {"RAY_ADDRESS": self.address}
        if self.token_path:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=self.token_path)
        return env


def find_running(directory: Path | None = None) -> ClusterState | None:
    """The minjiang cluster recorded in the state folder, if its head answers."""
    state = ClusterState.load(directory)
    return state if state is not None and state.alive() else None


def use_state_token(state: ClusterState) -> None:
    """Point this process's Ray client at the cluster's token (Ray reads it lazily)."""
    if not state.token_path:
        return
    os.environ["RAY_AUTH_TOKEN_PATH"] = state.token_path
    os.environ.pop("RAY_AUTH_TOKEN", None)
    os.environ["RAY_AUTH_MODE"] = "token"
    refresh_ray_auth()


def use_token_for(address: str) -> None:
    """Send the right token to ``address``: the recorded cluster's when it is that
    cluster (its dashboard or GCS address), else whatever this host has for Ray."""
    state = ClusterState.load()
    if state is not None and address.rstrip("/") in (state.dashboard, state.address):
        use_state_token(state)
        return
    from minjiang.core._jobs import use_cluster_token

    use_cluster_token()


def refresh_ray_auth() -> None:
    """Ray caches its authentication mode and token at import and first use: read
    them again from the environment (a no-op before Ray is imported)."""
    if "ray" not in sys.modules:
        return
    try:
        from ray import _raylet
    except ImportError:
        return
    with contextlib.suppress(Exception):
        _raylet.Config.initialize("")  # type: ignore[attr-defined]
        _raylet.AuthenticationTokenLoader.instance().reset_cache()  # type: ignore[attr-defined]


@contextlib.contextmanager
def loopback_ray() -> Iterator[None]:
    """Within the block, Ray treats this host as a single-node cluster: a loopback node
    IP stays loopback (else ``ray.init`` rewrites ``127.0.0.1`` to the host's address
    and binds its servers there). Processes started inside inherit the setting."""
    before = os.environ.get(_SINGLE_NODE_ENV)
    os.environ[_SINGLE_NODE_ENV] = "0"
    constants: Any = None
    old = None
    if "ray" in sys.modules:
        from ray._private import ray_constants

        constants = ray_constants
        old = constants.ENABLE_RAY_CLUSTER
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_SINGLE_NODE_ENV, None)
        else:
            os.environ[_SINGLE_NODE_ENV] = before
        if constants is not None:
            constants.ENABLE_RAY_CLUSTER = old


# ------------------------------------------------------------------------- processes


def cluster_processes(
    temp_dir: str, pids: Iterable[tuple[int, float]] = (), address: str = ""
) -> list[psutil.Process]:
    """This user's processes of the Ray cluster whose temp folder is ``temp_dir``:
    those naming it on their command line, those started with ``--address=`` its GCS
    ``address`` (the Ray client server, which ``ray start`` leaves to init), the
    recorded ``pids`` (checked against their start time, so a reused pid is never
    touched) and their descendants (agents rename themselves ``ray::...`` and no
    longer show the folder)."""
    import psutil

    if len(temp_dir) < 8 or not os.path.isabs(temp_dir):
        raise ClusterError(f"refusing to look for processes by the folder name {temp_dir!r}")
    me = os.getpid()
    uid = os.getuid()
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline", "uids"]):
        try:
            if proc.pid == me or proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            cmdline = proc.info["cmdline"] or ()
            if any(temp_dir in part for part in cmdline) or (
                address and f"--address={address}" in cmdline
            ):
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for pid, created in pids:
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) < 0.01:
                found.setdefault(pid, proc)
        except psutil.NoSuchProcess:
            continue
    for proc in list(found.values()):
        try:
            for child in proc.children(recursive=True):
                if child.pid != me:
                    found.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def listening_sockets(procs: Iterable[psutil.Process]) -> list[tuple[int, str, str, int]]:
    """``(pid, process name, address, port)`` of every TCP socket ``procs`` listen on."""
    import psutil

    out = []
    for proc in procs:
        try:
            name = proc.name()
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    out.append((proc.pid, name, conn.laddr.ip, conn.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def is_loopback(ip: str) -> bool:
    """Whether a listening address only accepts connections from this host."""
    import ipaddress

    if ip.startswith("::ffff:"):
        ip = ip[7:]
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def terminate(procs: Sequence[psutil.Process], grace: float = 5.0) -> list[int]:
    """SIGTERM ``procs``, SIGKILL what is left after ``grace`` seconds; the pids ended."""
    import psutil

    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)
    return [p.pid for p in procs]


def _tighten(temp_dir: Path) -> None:
    """Ray makes its session, log and socket folders 0777: make every folder 0700."""
    for root, dirs, _ in os.walk(temp_dir):
        for d in dirs:
            with contextlib.suppress(OSError):
                p = Path(root) / d
                if not p.is_symlink():
                    p.chmod(0o700)
    temp_dir.chmod(0o700)


def _ray_bin() -> str:
    found = Path(sys.executable).parent / "ray"
    return str(found) if found.exists() else "ray"


# -------------------------------------------------------------------------- start/stop


def ray_environment(
    token_path: str, *, loopback: bool, ports: Ports | None = None
) -> dict[str, str]:
    """Environment of the Ray processes of a minjiang cluster."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # jobs run `minjiang run ...`: this installation's commands come first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if token_path:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=token_path)
    else:
        env["RAY_AUTH_MODE"] = "disabled"
    if loopback:
        env[_SINGLE_NODE_ENV] = "0"
    if ports is not None:
        env["AUTOSCALER_METRIC_PORT"] = str(ports.autoscaler_metrics)
        env["DASHBOARD_METRIC_PORT"] = str(ports.dashboard_metrics)
    from minjiang.core._executors import WORKER_ENV

    for key, value in WORKER_ENV.items():
        env.setdefault(key, value)
    return env


def head_command(
    ports: Ports,
    *,
    node_ip: str,
    temp_dir: str,
    num_cpus: int,
    num_gpus: int = 0,
    resources: Mapping[str, float] | None = None,
    dashboard_host: str = LOOPBACK,
    object_store_bytes: int | None = None,
) -> list[str]:
    """``ray start --head`` with every port explicit."""
    cmd = [
        _ray_bin(),
        "start",
        "--head",
        f"--node-ip-address={node_ip}",
        f"--port={ports.gcs}",
        "--include-dashboard=true",
        f"--dashboard-host={dashboard_host}",
        f"--dashboard-port={ports.dashboard}",
        f"--ray-client-server-port={ports.client}",
        f"--node-manager-port={ports.node_manager}",
        f"--object-manager-port={ports.object_manager}",
        f"--dashboard-agent-listen-port={ports.agent_http}",
        f"--dashboard-agent-grpc-port={ports.agent_grpc}",
        f"--runtime-env-agent-port={ports.runtime_env_agent}",
        f"--metrics-export-port={ports.metrics}",
        f"--min-worker-port={ports.min_worker}",
        f"--max-worker-port={ports.max_worker}",
        f"--num-cpus={num_cpus}",
        f"--num-gpus={num_gpus}",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
    ]
    if resources:
        cmd.append(f"--resources={json.dumps(dict(resources))}")
    if object_store_bytes:
        cmd.append(f"--object-store-memory={object_store_bytes}")
    return cmd


def _object_store_default() -> int:
    # minjiang's tasks pass only small metadata through the object store
    from minjiang.core._executors import LOCAL_RAY_OBJECT_STORE_BYTES

    return LOCAL_RAY_OBJECT_STORE_BYTES


def _check_interface(node_ip: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(node_ip)
    except ValueError:
        raise ParameterError(
            f"--node-ip-address {node_ip[:80]!r} is not an IP address; give this host's "
            "address on the interface the other nodes reach (e.g. 10.0.0.5), or leave it "
            "out to stay on loopback"
        ) from None


def start_cluster(
    *,
    num_cpus: int | None = None,
    num_gpus: int = 0,
    resources: Mapping[str, float] | None = None,
    node_ip: str = LOOPBACK,
    insecure_no_token: bool = False,
    insecure_dashboard_host: str | None = None,
    directory: Path | None = None,
    object_store_bytes: int | None = None,
    warm_workers: int | None = None,
    warm_idle_s: float = WARM_IDLE_S,
    run_service: bool = True,
    timeout: float = 240.0,
    warn: Any = None,
) -> ClusterState:
    """Start a local Ray head node for later commands to attach to.

    Parameters
    ----------
    num_cpus, num_gpus, resources
        What the node offers (CPUs default to the host's count).
    node_ip
        The interface every Ray server listens on; loopback unless another is named
        (then other hosts can join: open the ports in your firewall).
    insecure_no_token
        Start without token authentication (anyone who reaches a port can run code).
    insecure_dashboard_host
        Bind the dashboard and job API to this address instead of loopback.
    directory
        State folder (default :func:`cluster_dir`).
    object_store_bytes
        Ray's object store (default 128 MiB: minjiang's tasks pass only metadata).
    warm_workers
        Warm workers that runs on this cluster keep for later runs (default: one per
        CPU; 0: none, every job starts its own workers). See ``core/_warm.py``.
    warm_idle_s
        Seconds a warm worker waits for a task before it exits.
    run_service
        Start the run service, a driver that stays connected and runs ``minjiang run``
        for the command line (``core/_service.py``).
    warn
        Called with the text of each warning about an insecure setting.

    Returns
    -------
    ClusterState
        What was recorded in ``directory/cluster.json``.

    Raises
    ------
    ClusterError
        If a cluster is already recorded and running, or Ray fails to start (its output
        is in the message).
    """
    directory = directory or cluster_dir()
    running = find_running(directory)
    if running is not None:
        raise ClusterError(
            f"a minjiang cluster is already running at {running.address} (state in "
            f"{directory}); stop it first with `minjiang cluster stop`"
        )
    _check_interface(node_ip)
    if num_cpus is not None and not 1 <= num_cpus <= 4096:
        raise ParameterError(f"--num-cpus {num_cpus} must be between 1 and 4096")
    if num_gpus < 0:
        raise ParameterError(f"--num-gpus {num_gpus} must be 0 or more")
    if warm_workers is not None and not 0 <= warm_workers <= 4096:
        raise ParameterError(f"--warm-workers {warm_workers} must be between 0 and 4096")
    if not warm_idle_s > 0:
        raise ParameterError(f"--warm-idle {warm_idle_s} must be a number of seconds above 0")
    insecure = []
    loopback = is_loopback(node_ip)
    if not loopback:
        insecure.append(f"node-ip-address={node_ip}")
    if insecure_no_token:
        insecure.append("no-token")
    if insecure_dashboard_host:
        _check_interface(insecure_dashboard_host)
        insecure.append(f"dashboard-host={insecure_dashboard_host}")
    for item in insecure:
        if warn is not None:
            warn(_INSECURE_WARNINGS[item.split("=")[0]].format(value=item.partition("=")[2]))
    _private_dir(directory)
    token = "" if insecure_no_token else str(ensure_token(directory))
    # Ray makes its temp folder 0777: it lives inside one that is 0700 from the start
    # (/tmp, so that unix socket paths stay short)
    temp_dir = tempfile.mkdtemp(prefix="mjray-", dir="/tmp")
    ports = Ports.free(node_ip if loopback else "0.0.0.0")
    cpus = num_cpus or os.cpu_count() or 1
    cmd = head_command(
        ports,
        node_ip=node_ip,
        temp_dir=os.path.join(temp_dir, "r"),
        num_cpus=cpus,
        num_gpus=num_gpus,
        resources=resources,
        dashboard_host=insecure_dashboard_host or (LOOPBACK if loopback else node_ip),
        object_store_bytes=object_store_bytes or _object_store_default(),
    )
    env = ray_environment(token, loopback=loopback, ports=ports)
    log = directory / "ray-start.log"
    for attempt in range(1, _START_ATTEMPTS + 1):
        with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            proc = subprocess.run(
                cmd,
                env=env,
                cwd=directory,  # never a folder whose modules would shadow Ray's imports
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if proc.returncode == 0:
            break
        terminate(cluster_processes(temp_dir))
        text = log.read_text(errors="replace")
        # Ray gives its raylet a fixed 30 s to register; a busy host can miss that
        if "timed out during startup" not in text or attempt == _START_ATTEMPTS:
            raise ClusterError(
                f"ray start failed (exit {proc.returncode}); its output ({log}) ends:\n"
                f"{text[-2000:]}"
            )
        if warn is not None:
            warn(f"Ray's node did not register in time (a busy host); try {attempt + 1}")
    _tighten(Path(temp_dir))
    procs = cluster_processes(temp_dir, address=f"{node_ip}:{ports.gcs}")
    state = ClusterState(
        address=f"{node_ip}:{ports.gcs}",
        dashboard=f"http://{insecure_dashboard_host or (LOOPBACK if loopback else node_ip)}:"
        f"{ports.dashboard}",
        token_path=token,
        temp_dir=temp_dir,
        node_ip=node_ip,
        num_cpus=cpus,
        num_gpus=num_gpus,
        started=time.time(),
        pids=tuple((p.pid, p.create_time()) for p in procs if p.is_running()),
        insecure=tuple(insecure),
        ports=asdict(ports),
        warm_workers=cpus if warm_workers is None else warm_workers,
        warm_idle_s=float(warm_idle_s),
    )
    state.save(directory)
    if run_service:
        state = _start_run_service(state, directory, timeout, warn)
    return state


def _start_run_service(
    state: ClusterState, directory: Path, timeout: float, warn: Any
) -> ClusterState:
    """Start the run service of ``state``'s cluster and wait until it listens; the state
    that names it. A service that fails to start is a warning: runs then drive Ray
    themselves, as without one."""
    import psutil

    sock = os.path.join(state.temp_dir, "run.sock")
    log = directory / "run-service.log"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "minjiang.core._service", sock],
            env=env,
            cwd=directory,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal is not for it
        )
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if os.path.exists(sock):
            _tighten(Path(state.temp_dir))  # its connection made Ray's folders 0777 again
            pids = (*state.pids, (proc.pid, psutil.Process(proc.pid).create_time()))
            state = replace(state, run_socket=sock, pids=pids)
            state.save(directory)
            return state
        time.sleep(0.1)
    if proc.poll() is None:
        terminate([psutil.Process(proc.pid)])
    if warn is not None:
        text = log.read_text(errors="replace")[-1000:]
        warn(f"the run service did not start, so runs drive Ray themselves; {log} ends:\n{text}")
    return state


_START_ATTEMPTS = 3
_INSECURE_WARNINGS = {
    "node-ip-address": "Ray's servers listen on {value}, reachable from other hosts: keep "
    "the token, and let only the cluster's nodes reach these ports",
    "no-token": "token authentication is OFF: anyone who can reach a port of this cluster "
    "can run code as you",
    "dashboard-host": "the dashboard and job API listen on {value}: anyone who reaches it "
    "and has the token can submit jobs",
}


def stop_cluster(directory: Path | None = None, grace: float = 5.0) -> list[int]:
    """Stop the cluster recorded in ``directory`` (only its processes) and forget it.

    Returns the pids that were ended; raises :class:`ClusterError` when no cluster is
    recorded.
    """
    import shutil

    directory = directory or cluster_dir()
    state = ClusterState.load(directory)
    if state is None:
        raise ClusterError(
            f"no minjiang cluster is recorded in {directory}; start one with "
            "`minjiang cluster start` (or set MINJIANG_CLUSTER_DIR to its folder)"
        )
    ended = terminate(cluster_processes(state.temp_dir, state.pids, state.address), grace)
    shutil.rmtree(state.temp_dir, ignore_errors=True)
    (directory / STATE_FILE).unlink(missing_ok=True)
    return ended


# ------------------------------------------------------------------- node table, checks


@dataclass(frozen=True)
class NodeResources:
    """What one live node offers the scheduler."""

    node_id: str
    ip: str
    resources: Mapping[str, float]

    @property
    def cpus(self) -> float:
        return float(self.resources.get("CPU", 0.0))

    @property
    def gpus(self) -> float:
        return float(self.resources.get("GPU", 0.0))

    @property
    def memory(self) -> float:
        return float(self.resources.get("memory", 0.0))


def nodes_from_ray(ray: Any) -> list[NodeResources]:
    """The live nodes of the cluster this driver is connected to."""
    return [
        NodeResources(n.get("NodeID", ""), n.get("NodeManagerAddress", ""), dict(n["Resources"]))
        for n in ray.nodes()
        if n.get("Alive") and n.get("Resources")
    ]


def _host_token(address: str) -> str:
    """The token this host would send to ``address`` ("" when it has none)."""
    state = ClusterState.load()
    if state is not None and address.rstrip("/") in (state.dashboard, state.address):
        path = state.token_path
    elif os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    else:
        path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    try:
        return Path(path).read_text().strip() if path else ""
    except OSError:
        return ""


def http_node_table(dashboard: str, token_path: str | None = None) -> list[NodeResources]:
    """The live nodes of the cluster whose dashboard is ``dashboard``, read from its
    state API over HTTP (tens of milliseconds; Ray is not imported)."""
    import urllib.error
    import urllib.request

    if token_path is not None:
        try:
            token = Path(token_path).read_text().strip() if token_path else ""
        except OSError:
            token = ""
    else:
        token = _host_token(dashboard)
    url = dashboard.rstrip("/") + "/api/v0/nodes?limit=10000&detail=1"
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.loads(response.read())
        rows = data["data"]["result"]["result"]
    except urllib.error.HTTPError as err:
        hint = (
            "the token was refused: copy the cluster's token (`ray get-auth-token` on the "
            "head) into RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH"
            if err.code in (401, 403)
            else "check that it is the dashboard address of the head node"
        )
        raise ClusterError(
            f"cannot read the node table of the cluster at {dashboard!r} (HTTP {err.code}); {hint}"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ClusterError(
            f"cannot read the node table of the cluster at {dashboard!r} "
            f"({type(err).__name__}: {str(err)[:200]}); give the dashboard address of the "
            "head node, e.g. http://head:8265"
        ) from None
    return [
        NodeResources(
            str(r.get("node_id", "")), str(r.get("node_ip", "")), dict(r["resources_total"])
        )
        for r in rows
        if r.get("state") == "ALIVE" and r.get("resources_total")
    ]


def node_table(dashboard: str) -> list[NodeResources]:
    """The live nodes of the cluster whose dashboard (job API) is ``dashboard``."""
    return http_node_table(dashboard)


def _fmt(resource: str, amount: float) -> str:
    if resource in ("memory", "object_store_memory"):
        from minjiang.core._units import format_bytes

        return format_bytes(amount)
    return f"{amount:g}"


def task_demand(task: Any) -> dict[str, float]:
    """What Ray is asked for to run ``task`` (a :class:`TaskSpec`)."""
    need = {"CPU": float(task.cpus)}
    if task.gpus:
        need["GPU"] = float(task.gpus)
    if task.memory:
        need["memory"] = float(task.memory)
    for name, amount in task.resources:
        need[name] = float(amount)
    return need


def check_tasks_feasible(
    groups: Iterable[tuple[str, Iterable[Any]]], nodes: Sequence[NodeResources]
) -> None:
    """Refuse, before anything is submitted, a task that no node can run.

    ``groups`` pairs a label (``step 'smooth'``) with its tasks. Raises
    :class:`InfeasibleTaskError` naming the step, the resource, what one task asks and
    the most any node has.
    """
    if not nodes:
        raise InfeasibleTaskError(
            "the cluster has no live node with resources; start a node (or check "
            "`minjiang cluster status`)"
        )
    for label, tasks in groups:
        seen: set[tuple[tuple[str, float], ...]] = set()
        for task in tasks:
            need = task_demand(task)
            key = tuple(sorted(need.items()))
            if key in seen:
                continue
            seen.add(key)
            if any(all(n.resources.get(r, 0.0) >= a for r, a in need.items()) for n in nodes):
                continue
            for resource, amount in need.items():
                most = max(n.resources.get(resource, 0.0) for n in nodes)
                if most < amount:
                    raise InfeasibleTaskError(
                        f"{label}: each task asks for {_fmt(resource, amount)} {resource} but "
                        f"no node has that much (the most on one node: "
                        f"{_fmt(resource, most)}); {_FIXES.get(resource, _FIX_CUSTOM)}"
                    )
            wanted = ", ".join(f"{_fmt(r, a)} {r}" for r, a in need.items())
            raise InfeasibleTaskError(
                f"{label}: each task asks for {wanted} together and no single node has all "
                "of them; lower what the step asks for, or add a node that has them"
            )


_FIX_CUSTOM = (
    "start a node offering it (ray start --resources, minjiang cluster start --resources) "
    "or remove it from the step's resources"
)
_FIXES = {
    "CPU": "lower the step's cpus or add a larger node",
    "GPU": "run with --backend cpu, or add a node with GPUs (--num-gpus)",
    "memory": "lower --memory-budget (each task gets budget / CPUs) or use smaller chunks, "
    "or add a node with more memory",
}


# ------------------------------------------------------------------------------ Slurm


def sbatch_script(
    command: Sequence[str],
    *,
    nodes: int | None = None,
    time_limit: str | None = None,
    partition: str | None = None,
    account: str | None = None,
    gpus_per_node: int | None = None,
    job_name: str = "minjiang",
    interface: str | None = None,
    state_dir: str | None = None,
    python: str | None = None,
    insecure_no_token: bool = False,
) -> str:
    """A Slurm batch script that starts Ray across the allocation and runs ``command``.

    The head runs on the allocation's first node, one worker per other node (through
    ``srun``); CPUs and GPUs come from ``SLURM_CPUS_ON_NODE`` and ``SLURM_GPUS_ON_NODE``;
    every port is explicit, in a block derived from ``SLURM_JOB_ID`` (as
    :meth:`Ports.for_job`); a fresh token (0600, in a 0700 folder under the state
    folder, which every node must see) protects the cluster; Ray's folders are 0700 on
    node-local storage. ``command`` (a ``minjiang run`` or ``submit``) runs on the
    head with ``RAY_ADDRESS`` and ``MINJIANG_JOB_ADDRESS`` set; Ray is stopped after it.
    """
    import shlex

    if not command:
        raise ParameterError(
            "give the command to run inside the allocation after --, e.g. "
            "minjiang cluster sbatch -- minjiang run pipeline.yaml --store /shared/store"
        )
    if nodes is not None and not 1 <= nodes <= 100000:
        raise ParameterError(f"--nodes {nodes} must be between 1 and 100000")
    if interface is not None and not interface.replace("-", "").replace(".", "").isalnum():
        raise ParameterError(f"--interface {interface[:40]!r} is not a network interface name")
    lines = ["#!/bin/bash", f"#SBATCH --job-name={shlex.quote(job_name)}"]
    if nodes:
        lines.append(f"#SBATCH --nodes={nodes}")
    lines.append("#SBATCH --ntasks-per-node=1")
    if gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={gpus_per_node}")
    if time_limit:
        lines.append(f"#SBATCH --time={shlex.quote(time_limit)}")
    if partition:
        lines.append(f"#SBATCH --partition={shlex.quote(partition)}")
    if account:
        lines.append(f"#SBATCH --account={shlex.quote(account)}")
    bin_dir = str(Path(python or sys.executable).parent)
    state = (
        state_dir
        or "${MINJIANG_CLUSTER_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/minjiang/cluster}"
    )
    ip_of = (
        f"ip -4 -o addr show dev {interface} | tr -s ' ' | cut -d' ' -f4 | cut -d/ -f1 | head -n1"
        if interface
        else "hostname -I | cut -d' ' -f1"
    )
    body = _SBATCH_BODY.format(
        bin_dir=shlex.quote(bin_dir),
        state=state,
        ip_of=shlex.quote(ip_of),
        auth=(
            'export RAY_AUTH_MODE=disabled\necho "WARNING: token authentication is OFF" >&2'
            if insecure_no_token
            else _SBATCH_TOKEN
        ),
        command=shlex.join(command),
    )
    return "\n".join(lines) + "\n" + body


_SBATCH_TOKEN = """\
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$JOB_DIR/auth_token"
( umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_hex(32))' > "$RAY_AUTH_TOKEN_PATH" )"""

_SBATCH_BODY = r"""
# Written by `minjiang cluster sbatch`: Ray across this allocation, secure by default.
set -euo pipefail
umask 077
BIN={bin_dir}
export PATH="$BIN:$PATH"
: "${{SLURM_JOB_ID:?run this script with sbatch}}"
# ports: a block of 256 chosen by the job id; head on +0..+10, workers on +16..+26,
# worker processes on +32..+143 (head) and +144..+255 (workers)
BASE=$(( 10000 + (SLURM_JOB_ID % 88) * 256 ))
export RAY_USAGE_STATS_ENABLED=0
JOB_DIR="{state}/slurm-$SLURM_JOB_ID"
mkdir -p "$JOB_DIR" && chmod 700 "$JOB_DIR"
{auth}
# Ray's temp folder: node-local, 0700, one per node
export MJ_RAY_TMP="${{MINJIANG_RAY_TMP:-/tmp}}/mjray-$SLURM_JOB_ID"

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
HEAD=${{NODES[0]}}
export IP_OF={ip_of}  # this node's address on the cluster network
HEAD_IP=$(srun --nodes=1 --ntasks=1 -w "$HEAD" bash -c "$IP_OF")
CPUS=${{SLURM_CPUS_ON_NODE:-$(nproc)}}
GPUS=${{SLURM_GPUS_ON_NODE:-0}}
GPUS=${{GPUS##*:}}
export HEAD_IP CPUS GPUS BASE

node_start() {{  # $1: head or worker; runs on the node through srun
    cat <<'EOF'
set -eu
umask 077
ROLE=$1
OFF=0; WLOW=$((BASE + 32))
if [ "$ROLE" = worker ]; then OFF=16; WLOW=$((BASE + 144)); fi
# Ray makes its own temp folder 0777: it lives inside a 0700 one
PRIV="$MJ_RAY_TMP-${{SLURM_NODEID:-0}}"
mkdir -p "$PRIV" && chmod 700 "$PRIV"
TMP="$PRIV/r"
export AUTOSCALER_METRIC_PORT=$((BASE + OFF + 9)) DASHBOARD_METRIC_PORT=$((BASE + OFF + 10))
ARGS=(--node-manager-port=$((BASE + OFF + 3)) --object-manager-port=$((BASE + OFF + 4))
      --dashboard-agent-listen-port=$((BASE + OFF + 5)) --dashboard-agent-grpc-port=$((BASE + OFF + 6))
      --runtime-env-agent-port=$((BASE + OFF + 7)) --metrics-export-port=$((BASE + OFF + 8))
      --min-worker-port=$WLOW --max-worker-port=$((WLOW + 111))
      --num-cpus="$CPUS" --num-gpus="$GPUS" --temp-dir="$TMP" --disable-usage-stats --block)
if [ "$ROLE" = head ]; then
  ARGS=(--head --node-ip-address="$HEAD_IP" --port=$BASE --include-dashboard=true
        --dashboard-host=127.0.0.1 --dashboard-port=$((BASE + 1))
        --ray-client-server-port=$((BASE + 2)) "${{ARGS[@]}}")
else
  ARGS=(--address="$HEAD_IP:$BASE" --node-ip-address="$(bash -c "$IP_OF")" "${{ARGS[@]}}")
fi
# Ray gives a raylet a fixed 30 s to register: a busy node may need another try
CHILD=
trap '[ -n "$CHILD" ] && kill -TERM "$CHILD"; wait; exit 0' TERM INT
for try in 1 2 3; do
  ray start "${{ARGS[@]}}" & CHILD=$!
  if wait "$CHILD"; then exit 0; fi
  echo "ray start ($ROLE, try $try) failed; retrying" >&2
  sleep 2
done
exit 1
EOF
}}

STEPS=()
cleanup() {{
  for pid in "${{STEPS[@]}}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${{STEPS[@]}}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$JOB_DIR"
}}
trap cleanup EXIT

srun --nodes=1 --ntasks=1 -w "$HEAD" bash -c "$(node_start)" _ head &
STEPS+=($!)
for _ in $(seq 300); do
  if ray health-check --address "$HEAD_IP:$BASE" >/dev/null 2>&1; then break; fi
  sleep 1
done
for node in "${{NODES[@]:1}}"; do
  srun --nodes=1 --ntasks=1 -w "$node" bash -c "$(node_start)" _ worker &
  STEPS+=($!)
done

export RAY_ADDRESS="$HEAD_IP:$BASE"
export MINJIANG_JOB_ADDRESS="http://127.0.0.1:$((BASE + 1))"
NODES_UP='
import json, os, urllib.request as u
r = u.Request(os.environ["MINJIANG_JOB_ADDRESS"] + "/api/v0/nodes?limit=10000")
if os.environ.get("RAY_AUTH_TOKEN_PATH"):
    r.add_header("Authorization", "Bearer " + open(os.environ["RAY_AUTH_TOKEN_PATH"]).read().strip())
rows = json.load(u.urlopen(r, timeout=10))["data"]["result"]["result"]
print(sum(1 for x in rows if x["state"] == "ALIVE"))'
for _ in $(seq 180); do  # until every node has registered
  n=$(python -c "$NODES_UP" 2>/dev/null || echo 0)
  [ "$n" -ge "${{#NODES[@]}}" ] && break
  sleep 1
done
if [ "$n" -lt "${{#NODES[@]}}" ]; then
  echo "only $n of ${{#NODES[@]}} Ray nodes registered; see the ray start output above" >&2
  exit 1
fi
echo "Ray: ${{#NODES[@]}} node(s), head $HEAD_IP:$BASE, dashboard $MINJIANG_JOB_ADDRESS (on the head)"
{command}
"""
