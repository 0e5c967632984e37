"""``minjiang cluster start|stop|status|sbatch``: a persistent Ray cluster, secure by default."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from minjiang.core._cluster import ClusterState

cluster_app = typer.Typer(
    no_args_is_help=True,
    help="A persistent local Ray cluster that run, plan and submit attach to; Slurm scripts.",
)
console = Console()
err_console = Console(stderr=True)


def _warn(text: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True, highlight=False)


def _resources(text: str | None) -> dict[str, float] | None:
    from minjiang.core.errors import ParameterError

    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
        for k, v in value.items()
    ):
        raise ParameterError(
            f"--resources {text[:80]!r} must be a JSON object of resource name to amount, "
            "e.g. '{\"fast_disk\": 1}'"
        )
    return {k: float(v) for k, v in value.items()}


@cluster_app.command("start")
def cluster_start(
    num_cpus: int | None = typer.Option(None, help="CPUs the node offers (default: all)."),
    num_gpus: int = typer.Option(0, help="GPUs the node offers."),
    resources: str | None = typer.Option(
        None, help="Custom resources as JSON, e.g. '{\"fast_disk\": 1}'."
    ),
    node_ip_address: str = typer.Option(
        "127.0.0.1",
        "--node-ip-address",
        help="Interface every Ray server listens on; loopback unless you name another "
        "(needed for other hosts to join).",
    ),
    insecure_no_token: bool = typer.Option(
        False, "--insecure-no-token", help="Start WITHOUT token authentication (not advised)."
    ),
    insecure_dashboard_host: str | None = typer.Option(
        None,
        "--insecure-dashboard-host",
        help="Bind the dashboard and job API to this address instead of loopback.",
    ),
    warm_workers: int | None = typer.Option(
        None,
        "--warm-workers",
        help="Worker processes kept warm between runs, so a small run does not wait for "
        "workers to start (default: one per CPU; 0: none).",
    ),
    warm_idle: float = typer.Option(
        900.0, "--warm-idle", help="Seconds a warm worker waits for work before it exits."
    ),
    run_service: bool = typer.Option(
        True,
        "--run-service/--no-run-service",
        help="Keep a driver connected that runs `minjiang run` for the command line, so "
        "a run does not pay for Ray's client (default: on).",
    ),
) -> None:
    """Start a local Ray head node that later commands attach to (secure by default)."""
    from minjiang.core._cluster import cluster_dir, start_cluster

    console.print("starting Ray (this takes a few seconds)...")
    state = start_cluster(
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        resources=_resources(resources),
        node_ip=node_ip_address,
        insecure_no_token=insecure_no_token,
        insecure_dashboard_host=insecure_dashboard_host,
        warm_workers=warm_workers,
        warm_idle_s=warm_idle,
        run_service=run_service,
        warn=_warn,
    )
    console.print(
        escape(
            f"cluster running: address {state.address}, dashboard and job API "
            f"{state.dashboard}, {state.num_cpus} CPUs, {state.num_gpus} GPUs, "
            f"{state.warm_workers} warm workers (idle exit after {state.warm_idle_s:g} s)"
        )
    )
    console.print(escape(f"token: {state.token_path or 'NONE (--insecure-no-token)'}"))
    if state.run_socket:
        console.print(escape(f"run service: {state.run_socket}"))
    console.print(escape(f"state: {cluster_dir()}; Ray's files: {state.temp_dir}"))
    console.print(
        "minjiang run / plan / submit / job now use it; stop it with: minjiang cluster stop"
    )


@cluster_app.command("stop")
def cluster_stop() -> None:
    """Stop the cluster `minjiang cluster start` started (only its own processes)."""
    from minjiang.core._cluster import stop_cluster

    ended = stop_cluster()
    console.print(f"stopped: {len(ended)} Ray processes ended")


@cluster_app.command("status")
def cluster_status(
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Show the recorded cluster: address, nodes and resources, and every socket its
    processes listen on (exit 1 if one is reachable from other hosts unasked)."""
    from minjiang.core._cluster import (
        ClusterError,
        ClusterState,
        cluster_dir,
        cluster_processes,
        is_loopback,
        listening_sockets,
        node_table,
    )

    state = ClusterState.load()
    if state is None:
        raise ClusterError(
            f"no minjiang cluster is recorded in {cluster_dir()}; start one with "
            "`minjiang cluster start`"
        )
    alive = state.alive()
    procs = cluster_processes(state.temp_dir, state.pids, state.address)
    socks = listening_sockets(procs)
    exposed = [s for s in socks if not is_loopback(s[2])]
    nodes = []
    if alive:
        from minjiang.core._cluster import use_state_token

        use_state_token(state)
        nodes = node_table(state.dashboard)
    if as_json:
        out = {
            "address": state.address,
            "dashboard": state.dashboard,
            "running": alive,
            "token": state.token_path,
            "insecure": list(state.insecure),
            "processes": len(procs),
            "warm_workers": state.warm_workers,
            "warm_idle_s": state.warm_idle_s,
            "run_service": _service_status(state),
            "nodes": [{"ip": n.ip, "resources": dict(n.resources)} for n in nodes],
            "listening": [
                {"pid": p, "process": name, "address": ip, "port": port}
                for p, name, ip, port in socks
            ],
        }
        console.out(json.dumps(out, indent=1))
    else:
        console.print(
            escape(
                f"cluster at {state.address} ({'running' if alive else 'NOT answering'}), "
                f"dashboard {state.dashboard}, {len(procs)} processes, token "
                f"{state.token_path or 'NONE'}, {state.warm_workers} warm workers, run "
                f"service {_service_status(state)}"
            )
        )
        table = Table(title="nodes")
        for col in ("node", "CPU", "GPU", "memory", "other resources"):
            table.add_column(col)
        from minjiang.core._units import format_bytes

        for n in nodes:
            other = {
                k: v
                for k, v in n.resources.items()
                if k not in ("CPU", "GPU", "memory", "object_store_memory")
                and not k.startswith("node:")
            }
            table.add_row(
                n.ip, f"{n.cpus:g}", f"{n.gpus:g}", format_bytes(n.memory), escape(str(other))
            )
        console.print(table)
        table = Table(title="listening sockets")
        for col in ("pid", "process", "address", "port", "reach"):
            table.add_column(col)
        for pid, name, ip, port in sorted(socks, key=lambda s: s[3]):
            reach = "loopback" if is_loopback(ip) else "[red]OTHER HOSTS[/]"
            table.add_row(str(pid), escape(name), ip, str(port), reach)
        console.print(table)
        for item in state.insecure:
            _warn(f"started with an insecure setting: {item}")
    if exposed and not state.insecure:
        err_console.print(
            f"[red]{len(exposed)} socket(s) listen beyond loopback[/] although the cluster "
            "was started on loopback"
        )
        raise typer.Exit(1)


def _service_status(state: ClusterState) -> str:
    """``listening``, ``not listening`` or ``off`` (started with --no-run-service)."""
    import socket

    if not state.run_socket:
        return "off"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(state.run_socket)
        except OSError:
            return "not listening"
    return "listening"


@cluster_app.command(
    "sbatch", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def cluster_sbatch(
    ctx: typer.Context,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the script here (default: print it)."
    ),
    nodes: int | None = typer.Option(None, help="#SBATCH --nodes."),
    time_limit: str | None = typer.Option(None, "--time", help="#SBATCH --time, e.g. 02:00:00."),
    partition: str | None = typer.Option(None, help="#SBATCH --partition."),
    account: str | None = typer.Option(None, help="#SBATCH --account."),
    gpus_per_node: int | None = typer.Option(None, help="#SBATCH --gpus-per-node."),
    interface: str | None = typer.Option(
        None, help="Network interface the nodes talk over (default: the first address)."
    ),
    insecure_no_token: bool = typer.Option(
        False, "--insecure-no-token", help="Start WITHOUT token authentication (not advised)."
    ),
) -> None:
    """Write a Slurm batch script: Ray across the allocation, then the command after --.

    Example: minjiang cluster sbatch --nodes 4 -o job.sh -- minjiang run p.yaml --store /shared/s
    """
    from minjiang.core._cluster import sbatch_script

    if insecure_no_token:
        _warn("the script starts Ray WITHOUT token authentication")
    script = sbatch_script(
        list(ctx.args),
        nodes=nodes,
        time_limit=time_limit,
        partition=partition,
        account=account,
        gpus_per_node=gpus_per_node,
        interface=interface,
        insecure_no_token=insecure_no_token,
    )
    if output is None:
        sys.stdout.write(script)
        return
    output.write_text(script)
    output.chmod(0o700)
    console.print(f"wrote {output}; submit it with: sbatch {output}")
