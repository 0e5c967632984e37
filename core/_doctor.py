"""``minjiang doctor``: what this installation can do, and the fix for what is wrong.

Each check is a :class:`Check` with a status: ``ok``, ``info`` (worth knowing, not a
fault: no GPU on a CPU machine), ``warning`` (works, but should be fixed: a plugin
without a declared API range) or ``problem`` (something will fail: a plugin that did
not load, a store that cannot be written, a Ray address that does not answer). Every
warning and problem carries its fix. Checks are quick: nothing is computed, Ray is not
started, and the catalog check reads at most :data:`MAX_RECORDS` records.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from typing import Any, Literal
from urllib.parse import urlparse

__all__ = ["Check", "doctor", "probe_address"]

Status = Literal["ok", "info", "warning", "problem"]
#: the most catalog records (and names) one doctor run reads
MAX_RECORDS = 2000
#: seconds a TCP probe of a Ray address may take
PROBE_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class Check:
    """One finding: ``area`` (plugins, api, backends, ray, gpu, store), what was
    checked, its status, the detail, and the fix (for warnings and problems)."""

    area: str
    name: str
    status: Status
    detail: str
    fix: str = ""


def _plugins() -> list[Check]:
    from minjiang.core._plugins import (
        API_ATTRIBUTE,
        Registry,
        _distribution,
        api_compatibility,
        make_plugin_manager,
        suggested_range,
    )

    out: list[Check] = []
    pm, problems = make_plugin_manager()
    reg = Registry(pm, problems)
    counts: dict[str, dict[str, int]] = {}
    for kind, table in (
        ("operators", reg.operators),
        ("readers", reg.readers),
        ("pipelines", reg.pipelines),
        ("reports", reg.reports),
    ):
        for _, (plugin, _item) in table.items():
            counts.setdefault(plugin, {}).setdefault(kind, 0)
            counts[plugin][kind] += 1
    for name in reg.plugin_names():
        obj = pm.get_plugin(name)
        module = str(getattr(obj, "__name__", None) or type(obj).__module__)
        dist = _distribution(module)
        pkg = f"{dist['package']} {dist['version']}" if dist else "not an installed package"
        what = (
            ", ".join(
                f"{n} {k if n != 1 else k[:-1]}" for k, n in sorted(counts.get(name, {}).items())
            )
            or "nothing registered"
        )
        out.append(Check("plugins", name, "ok", f"{module} ({pkg}): {what}"))
        spec, _ = api_compatibility(obj)
        if spec is None:
            out.append(
                Check(
                    "api",
                    name,
                    "warning",
                    "declares no supported plugin API range: a minjiang it does not support "
                    "would still load it",
                    f"add {API_ATTRIBUTE} = {suggested_range()!r} (the range it supports) to "
                    f"{module}",
                )
            )
        else:
            out.append(Check("api", name, "ok", f"supports {spec}"))
    for p in problems:
        area = "api" if p.stage == "compat" else "plugins"
        fix = (
            "upgrade or uninstall the plugin, as the message says"
            if p.stage == "compat"
            else "fix the plugin (its author or `pip install -U` it) or uninstall it; "
            "`minjiang validate " + p.plugin + "` checks it"
        )
        if p.stage == "import":
            fix = (
                f"the plugin {p.plugin!r} fails to import: install what it needs, or "
                "uninstall it (`pip uninstall` its package)"
            )
        out.append(Check(area, p.plugin, "problem", f"({p.stage}) {p.error}", fix))
    return out


def _backends() -> list[Check]:
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    out: list[Check] = []
    if importlib.util.find_spec("numba") is None:
        out.append(
            Check(
                "backends",
                "numba",
                "problem",
                "numba is not importable: the cpu kernels cannot run",
                "pip install numba (minjiang depends on it)",
            )
        )
    else:
        try:
            import numba

            out.append(Check("backends", "numba", "ok", f"numba {numba.__version__} (cpu kernels)"))
        except Exception as err:
            out.append(
                Check(
                    "backends",
                    "numba",
                    "problem",
                    f"numba fails to import ({type(err).__name__}: {err})",
                    "reinstall numba at a version that matches the installed NumPy",
                )
            )
    out.extend(_numba_cuda())
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        out.append(
            Check(
                "backends",
                "numba.cuda",
                "info",
                "NUMBA_ENABLE_CUDASIM=1: numba.cuda kernels run in the CUDA simulator (slow)",
            )
        )
    try:
        cupy_version = version("cupy-cuda12x")
    except PackageNotFoundError:
        cupy_version = ""
    if importlib.util.find_spec("cupy") is None:
        out.append(
            Check(
                "backends",
                "cupy",
                "info",
                "CuPy is not installed: gpu kernels are not available (cpu kernels are)",
                "on a machine with an NVIDIA GPU: pip install 'minjiang[gpu]'",
            )
        )
    else:
        out.append(
            Check(
                "backends",
                "cupy",
                "ok",
                f"CuPy installed{' ' + cupy_version if cupy_version else ''}",
            )
        )
    return out


def _numba_cuda() -> list[Check]:
    """Whether numba's CUDA target sees a device (the numba.cuda kernels' backend)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return []  # the simulator "sees" a device; the CUDASIM check says what runs
    try:
        from numba import cuda

        available = bool(cuda.is_available())
    except Exception as err:  # numba missing or broken: reported by the numba check
        return (
            []
            if isinstance(err, ImportError)
            else [
                Check("backends", "numba.cuda", "info", f"numba.cuda: {type(err).__name__}: {err}")
            ]
        )
    if available:
        return [Check("backends", "numba.cuda", "ok", "numba.cuda sees a CUDA device")]
    return [
        Check(
            "backends",
            "numba.cuda",
            "info",
            "numba.cuda sees no CUDA device: numba.cuda kernels run only on GPU machines "
            "(or in the simulator, NUMBA_ENABLE_CUDASIM=1)",
        )
    ]


def _gpu() -> list[Check]:
    import importlib.util

    if importlib.util.find_spec("cupy") is None:
        return [Check("gpu", "device", "info", "no GPU backend (CuPy is not installed)")]
    from minjiang.core._devices import device_report

    report = device_report(fresh=True)
    if not report.usable:
        return [
            Check(
                "gpu",
                "device",
                "warning",
                report.error,
                "check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES, and that the "
                "CuPy package matches the CUDA version; runs with --backend gpu will fail",
            )
        ]
    return [
        Check(
            "gpu",
            "device",
            "ok",
            f"{report.model} (compute capability {report.compute_capability}), "
            f"{report.memory_free / 2**30:.1f} of {report.memory_total / 2**30:.1f} GiB free; "
            f"CUDA runtime {report.cuda_runtime}, driver {report.cuda_driver}",
        )
    ]


def probe_address(address: str, timeout: float = PROBE_SECONDS) -> tuple[str, int, str | None]:
    """The host and port of a Ray address and, when a TCP connection to it fails, why.

    ``address`` is ``host:port`` (the GCS), ``ray://host:port`` (Ray Client) or
    ``http(s)://host:port`` (the dashboard, as ``minjiang submit`` takes it).

    Raises
    ------
    ParameterError
        For an address of none of these forms.
    """
    from minjiang.core.errors import ParameterError

    text = address.strip()
    parsed = urlparse(text if "://" in text else f"gcs://{text}")
    default = {"ray": 10001, "http": 80, "https": 443}.get(parsed.scheme)
    try:
        port = parsed.port or default
    except ValueError:
        port = None
    if not parsed.hostname or port is None or parsed.scheme not in ("gcs", "ray", "http", "https"):
        raise ParameterError(
            f"Ray address {text[:100]!r} is not host:port, ray://host:port or "
            "http(s)://host:port; give the head node's address (e.g. 10.0.0.1:6379)"
        )
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return parsed.hostname, port, None
    except OSError as err:
        return parsed.hostname, port, f"{type(err).__name__}: {err.strerror or err}"


def _current_cluster() -> str | None:
    """The address of the Ray cluster ``ray start`` last started on this machine (the
    one ``--address auto`` joins), from the file Ray keeps in its default temp dir."""
    import tempfile

    for root in {"/tmp", tempfile.gettempdir()}:
        path = os.path.join(root, "ray", "ray_current_cluster")
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text:
            return text.splitlines()[0]
    return None


def _minjiang_cluster(address: str | None) -> list[Check]:
    """The cluster ``minjiang cluster start`` recorded, which runs attach to."""
    from minjiang.core._cluster import ClusterState, cluster_dir

    state = ClusterState.load()
    if state is None:
        return []
    if state.alive():
        return [
            Check(
                "ray",
                "minjiang cluster",
                "ok",
                f"the cluster `minjiang cluster start` started answers at {state.address} "
                f"({state.num_cpus} CPUs, {state.num_gpus} GPUs; dashboard {state.dashboard}); "
                "runs attach to it",
            )
        ]
    return [
        Check(
            "ray",
            "minjiang cluster",
            "warning",
            f"{cluster_dir()} records a cluster at {state.address} that does not answer",
            "`minjiang cluster stop` clears the record; `minjiang cluster start` starts one",
        )
    ]


def _ray(address: str | None) -> list[Check]:
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    if importlib.util.find_spec("ray") is None:
        return [
            Check(
                "ray",
                "ray",
                "problem",
                "Ray is not importable: the ray executor cannot run",
                "pip install 'ray[default]' (minjiang depends on it), or run with --executor local",
            )
        ]
    try:
        ray_version = version("ray")
    except PackageNotFoundError:
        ray_version = "?"
    out = [Check("ray", "ray", "ok", f"Ray {ray_version}")]
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address != "auto":
        host, port, err = probe_address(address)
        if err is None:
            out.append(Check("ray", "address", "ok", f"{address} answers ({host}:{port})"))
        else:
            out.append(
                Check(
                    "ray",
                    "address",
                    "problem",
                    f"{address} does not answer ({err})",
                    "start the cluster's head (`ray start --head` on it), or check the host, "
                    "the port and the firewall; `ray status --address ...` on a node shows it",
                )
            )
        return out
    out.extend(_minjiang_cluster(address))
    if any(c.name == "minjiang cluster" and c.status == "ok" for c in out):
        return out
    current = _current_cluster()
    if current is None:
        if address == "auto":
            out.append(
                Check(
                    "ray",
                    "address",
                    "problem",
                    "--address auto, but no Ray cluster was started on this machine",
                    "start one with `ray start --head`, or leave out --address to let "
                    "minjiang start a local Ray on demand",
                )
            )
        else:
            out.append(
                Check(
                    "ray",
                    "local cluster",
                    "info",
                    "no Ray cluster is running here: `minjiang run` starts a local Ray on "
                    "demand (or give --address / RAY_ADDRESS to join one)",
                )
            )
        return out
    _, _, err = probe_address(current)
    if err is None:
        out.append(
            Check(
                "ray",
                "local cluster",
                "ok",
                f"a Ray cluster runs at {current} (`--address auto` joins it)",
            )
        )
    else:
        out.append(
            Check(
                "ray",
                "local cluster",
                "problem" if address == "auto" else "warning",
                f"Ray's record of a cluster at {current} is stale: it does not answer ({err})",
                "`ray stop` (only if that cluster is yours) clears it, or `ray start --head` "
                "starts a new one",
            )
        )
    return out


def _store(store: str | None) -> list[Check]:
    from minjiang.storage import Catalog, open_store

    url = store or os.environ.get("MINJIANG_STORE") or "./minjiang-store"
    out: list[Check] = []
    if "://" not in url or url.startswith("file://"):
        path = url[len("file://") :] if url.startswith("file://") else url
        if not os.path.exists(path):
            parent = os.path.dirname(os.path.abspath(path))
            while parent and not os.path.exists(parent):
                parent = os.path.dirname(parent)
            if parent and os.access(parent, os.W_OK):
                return [
                    Check(
                        "store",
                        url,
                        "info",
                        "does not exist yet; the first ingest or run creates it",
                    )
                ]
            return [
                Check(
                    "store",
                    url,
                    "problem",
                    f"does not exist, and {parent!r} cannot be written, so it cannot be created",
                    "give a --store (or $MINJIANG_STORE) in a folder you can write",
                )
            ]
    try:
        st = open_store(url)
    except Exception as err:
        return [
            Check(
                "store",
                url,
                "problem",
                f"cannot be opened ({type(err).__name__}: {err})",
                "check the path or URL, the credentials and the network",
            )
        ]
    # readable: list the catalog
    try:
        st.list("catalog")
        out.append(Check("store", "readable", "ok", f"{st.url} lists"))
    except Exception as err:
        out.append(
            Check(
                "store",
                "readable",
                "problem",
                f"{st.url} cannot be listed ({type(err).__name__}: {err})",
                "check the permissions (or credentials) of the store",
            )
        )
        return out
    # writable: write and remove a temporary object (never listed as data)
    key = f".tmp-doctor-{uuid.uuid4().hex}"
    try:
        st.write_bytes(key, b"minjiang doctor")
        st.delete(key)
        out.append(Check("store", "writable", "ok", f"{st.url} takes writes"))
    except Exception as err:
        out.append(
            Check(
                "store",
                "writable",
                "problem",
                f"{st.url} cannot be written ({type(err).__name__}: {err})",
                "runs and ingests write results there: check its permissions, its free space "
                "or its credentials, or give another --store",
            )
        )
    out.extend(_catalog(Catalog(st)))
    return out


def _catalog(catalog: Any) -> list[Check]:
    from minjiang.storage._catalog import load_record

    out: list[Check] = []
    started = time.monotonic()
    ids = catalog._ids()
    bad: list[str] = []
    for rid in ids[:MAX_RECORDS]:
        try:
            if load_record(catalog.store, rid, cached=False) is None:
                bad.append(f"{rid} (vanished while read)")
        except Exception as err:
            bad.append(f"{rid} ({type(err).__name__}: {' '.join(str(err).split())[:160]})")
    names = catalog.names()
    dangling = [
        f"{name} -> {did}"
        for name, did in list(names.items())[:MAX_RECORDS]
        if not catalog.exists(did)
    ]
    checked = min(len(ids), MAX_RECORDS)
    scope = f"{checked} of {len(ids)} records" if checked < len(ids) else f"{len(ids)} records"
    seconds = time.monotonic() - started
    if bad:
        out.append(
            Check(
                "store",
                "catalog records",
                "problem",
                f"{len(bad)} of {scope} cannot be read: " + "; ".join(bad[:5]),
                "`minjiang verify ID` shows what is wrong with each; a record that was edited "
                "by hand must be restored, or the dataset computed again",
            )
        )
    if dangling:
        out.append(
            Check(
                "store",
                "catalog names",
                "problem",
                f"{len(dangling)} names point at datasets with no record: "
                + "; ".join(dangling[:5]),
                "run the step that produced each again (it republishes the name), or point "
                "the name at an existing dataset",
            )
        )
    if not bad and not dangling:
        out.append(
            Check(
                "store",
                "catalog",
                "ok",
                f"{scope} and {len(names)} names consistent ({seconds:.1f} s)",
            )
        )
    return out


def doctor(store: str | None = None, address: str | None = None) -> list[Check]:
    """Every check, in order: plugins and their API, backends, Ray, GPU, store.

    Parameters
    ----------
    store
        The store to check; default ``$MINJIANG_STORE`` or ``./minjiang-store``.
    address
        A Ray cluster to check; default ``$RAY_ADDRESS``, else the cluster ``ray
        start`` runs on this machine, if any.
    """
    import minjiang

    checks = [
        Check(
            "minjiang",
            "version",
            "ok",
            f"minjiang {minjiang.__version__}, plugin API {minjiang.API_VERSION}",
        )
    ]
    for part in (_plugins, _backends, lambda: _ray(address), _gpu, lambda: _store(store)):
        try:
            checks.extend(part())
        except Exception as err:  # one failing check must not hide the others
            from minjiang.core.errors import MinjiangError

            if isinstance(err, MinjiangError):
                raise
            checks.append(
                Check(
                    "doctor",
                    getattr(part, "__name__", "check"),
                    "problem",
                    f"the check itself failed: {type(err).__name__}: {err}",
                    "report this with `minjiang --verbose doctor` output",
                )
            )
    return checks
