"""The script `minjiang cluster sbatch` writes, run for real on this host: stand-ins for
``srun`` and ``scontrol`` run each step locally, so the script starts a Ray head and a
worker (two Ray nodes on one host, on the job's ports), runs a small pipeline on them
and stops Ray."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SCONTROL = """#!/bin/bash
# stand-in for `scontrol show hostnames LIST`
[ "$1 $2" = "show hostnames" ] || { echo "stand-in scontrol: only 'show hostnames'" >&2; exit 1; }
tr ',' '\\n' <<< "$3"
"""
SRUN = """#!/bin/bash
# stand-in for srun: runs the step here, as node -w NAME (SLURM_NODEID = its index)
node=""
while [ $# -gt 0 ]; do
  case "$1" in
    -w) node=$2; shift 2;;
    -*) shift;;
    *) break;;
  esac
done
i=0
for n in $(tr ',' ' ' <<< "$SLURM_JOB_NODELIST"); do
  [ "$n" = "$node" ] && break
  i=$((i + 1))
done
export SLURM_NODEID=$i SLURMD_NODENAME=$node
exec "$@"
"""


def _free_job_id() -> int:
    """A job id whose port block (as the script derives it) is free on this host."""
    import socket

    from minjiang.core._cluster import Ports

    for job in range(4000, 4088):
        ports = [Ports.for_job(job), Ports.for_job(job, worker_node=True)]
        wanted = {p for ps in ports for p in (ps.gcs, ps.dashboard, ps.node_manager)}
        ok = True
        for port in wanted:
            with socket.socket() as s:
                try:
                    s.bind(("0.0.0.0", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return job
    pytest.skip("no free port block for a job id")


def test_sbatch_script_runs_ray_across_the_allocation(tmp_path) -> None:
    from minjiang.core._cluster import sbatch_script
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs

    shims = tmp_path / "bin"
    shims.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (shims / name).write_text(text)
        (shims / name).chmod(0o755)
    cube, regions = make_demo_inputs(tmp_path / "data", years=1, ny=8, nx=8)
    pipe = tmp_path / "demo.yaml"
    pipe.write_text(DEMO_PIPELINE)
    store = tmp_path / "store"
    script = tmp_path / "job.sh"
    script.write_text(
        sbatch_script(
            [
                "minjiang",
                "run",
                str(pipe),
                "--store",
                str(store),
                "-i",
                f"cube={cube}",
                "-i",
                f"regions={regions}",
            ],
            nodes=2,
        )
    )
    ray_tmp = tempfile.mkdtemp(prefix="mjsl", dir="/tmp")  # unix socket paths stay short
    job = _free_job_id()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SLURM"))}
    env.update(
        PATH=f"{shims}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        SLURM_JOB_ID=str(job),
        SLURM_JOB_NODELIST="nodea,nodeb",
        SLURM_CPUS_ON_NODE="1",
        MINJIANG_CLUSTER_DIR=str(tmp_path / "state"),
        MINJIANG_RAY_TMP=ray_tmp,
    )
    proc = subprocess.Popen(
        ["bash", str(script)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        pytest.fail(f"the batch script did not finish:\n{output[-4000:]}")
    finally:
        leftovers = _processes_under(ray_tmp)
        for p in leftovers:
            p.kill()
        modes = {p.name: p.stat().st_mode & 0o777 for p in Path(ray_tmp).iterdir()}
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, output[-4000:]
    assert "Ray: 2 node(s)" in output
    assert "demo/sst-p90-by-region" in output and "computed" in output
    from minjiang.storage import Catalog, open_store

    assert Catalog(open_store(str(store))).get("demo/sst-p90").id
    # Ray stopped with the job, its folders were per node and private, the token is gone
    assert leftovers == [], [p.info["cmdline"] for p in leftovers]
    assert modes == {f"mjray-{job}-0": 0o700, f"mjray-{job}-1": 0o700}
    assert not (tmp_path / "state" / f"slurm-{job}").exists()


def _processes_under(folder: str) -> list[psutil.Process]:
    time.sleep(2)  # ray start --block ends its processes on SIGTERM
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(folder in part for part in p.info["cmdline"] or ()):
                found.append(p)
        except psutil.Error:
            continue
    return found
