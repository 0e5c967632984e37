"""The plugin author's test kit (a pytest plugin, loaded through the ``pytest11`` entry
point when minjiang is installed; ``pip install minjiang[test]`` brings pytest).

Fixtures:

* ``minjiang_store`` – a fresh temporary store folder;
* ``runtime`` – a fresh :class:`minjiang.Runtime` on that store with the in-process
  ``local`` executor (fast, deterministic: the test oracle);
* ``ray_session`` – one local Ray for the whole test session (2 CPUs unless
  ``MINJIANG_TEST_RAY_CPUS`` says otherwise), shut down at the end;
* ``ray_runtime`` – a fresh runtime on the ``ray`` executor, on that shared Ray.

Markers ``ray``, ``gpu`` and ``slow`` are registered, so a plugin's suite run with
``--strict-markers`` needs no declaration of its own.

Helpers:

* :func:`tmp_plugin` – a plugin (installed or not) registered on a runtime for a
  ``with`` block;
* :func:`make_dataset` – NumPy arrays or xarray objects committed into the runtime's
  store through the real ingest path (a catalog record with real digests);
* :class:`OperatorConformance` – a test class to subclass: it checks an operator
  against its NumPy reference on several chunkings (chunks that do not divide the
  array included) and on every backend the operator declares;
* :func:`assert_one_writer_per_chunk` – check that a plan writes every output chunk
  from exactly one task.

Nothing heavy is imported until a fixture or helper is used.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

if TYPE_CHECKING:
    import numpy as np
    import xarray as xr
    from minjiang.core._operator import Operator
    from minjiang.core._runtime import Result, Runtime

__all__ = [
    "MARKERS",
    "OperatorConformance",
    "assert_one_writer_per_chunk",
    "conformance_chunks",
    "make_dataset",
    "tmp_plugin",
]

#: The markers this plugin registers (name -> description).
MARKERS = {
    "ray": "uses the session-scoped local Ray (the ray_session / ray_runtime fixtures)",
    "gpu": "needs a CUDA device (skips without one)",
    "slow": "long test (still runs in CI)",
}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``ray``, ``gpu`` and ``slow`` markers."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


# ---------------------------------------------------------------- plugins
@contextlib.contextmanager
def tmp_plugin(runtime: Runtime, plugin: Any, name: str | None = None) -> Iterator[Runtime]:
    """Register ``plugin`` on ``runtime`` for the duration of a ``with`` block.

    Parameters
    ----------
    runtime : Runtime
        The runtime (the ``runtime`` fixture, say).
    plugin : module or object
        A module or object with ``@hookimpl`` functions. An installed plugin (loaded
        through its entry point) is already registered: the block sees it as it is,
        and it stays registered afterwards.
    name : str, optional
        The name to register it under. Naming an installed plugin (its entry-point
        name) replaces that plugin for the block: a development copy can stand in for
        the installed release.

    Yields
    ------
    Runtime
        ``runtime``, with the plugin's operators, readers and pipelines.

    Raises
    ------
    PluginError
        If the plugin's hooks are misspelt or unmarked (:meth:`Runtime.register`);
        nothing stays registered.

    Notes
    -----
    Other faults are isolated as for any plugin: a hook that raises or returns the
    wrong type, or a name another plugin already holds (the plugin registered first
    keeps it), is skipped and reported in ``runtime.registry.problems`` (and logged)
    while the rest of the plugin registers. The problems reported during the block are
    dropped with the plugin at its end.
    """
    from minjiang.core._plugins import Registry

    pm = runtime.registry.pm
    if pm.is_registered(plugin):
        yield runtime
        return
    problems = list(runtime.registry.problems)
    name = name or f"tmp-{id(plugin):x}"
    displaced = pm.get_plugin(name)
    if displaced is not None:
        pm.unregister(displaced)
    runtime.registry = Registry(pm, list(problems))

    def restore() -> None:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        if displaced is not None and not pm.is_registered(displaced):
            pm.register(displaced, name=name)
        runtime.registry = Registry(pm, list(problems))

    try:
        runtime.register(plugin, name=name)
    except BaseException:
        restore()
        raise
    try:
        yield runtime
    finally:
        restore()


# ---------------------------------------------------------------- datasets
def _default_dims(ndim: int) -> tuple[str, ...]:
    return tuple(f"dim_{i}" for i in range(ndim))  # xarray's own default names


def _as_dataset(
    data: Any, *, dims: Sequence[str] | None = None, attrs: Mapping[str, Any] | None = None
) -> xr.Dataset:
    """``data`` as an :class:`xarray.Dataset`: a Dataset, a named DataArray, or a
    mapping of variable name to a DataArray, a ``(dims, values)`` pair or a NumPy array
    (dims from ``dims``, else xarray's ``dim_0, dim_1, ...``)."""
    import numpy as np
    import xarray as xr
    from minjiang.core.errors import ParameterError

    if isinstance(data, xr.Dataset):
        ds = data.copy()
    elif isinstance(data, xr.DataArray):
        if data.name is None:
            raise ParameterError(
                "make_dataset: the DataArray has no name; give it one "
                "(DataArray.rename('x')) or pass {'x': array}"
            )
        ds = data.to_dataset()
    elif isinstance(data, Mapping):
        variables: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, xr.DataArray):
                variables[str(key)] = value
            elif isinstance(value, tuple) and len(value) == 2:
                variables[str(key)] = value
            else:
                arr = np.asarray(value)
                names = tuple(dims) if dims is not None else _default_dims(arr.ndim)
                if len(names) != arr.ndim:
                    raise ParameterError(
                        f"make_dataset: array {key!r} has {arr.ndim} dims but dims={names!r}; "
                        "give one dim name per axis"
                    )
                variables[str(key)] = (names, arr)
        for key, value in variables.items():
            var_dims = value.dims if isinstance(value, xr.DataArray) else tuple(value[0])
            if key in var_dims and len(var_dims) > 1:
                raise ParameterError(
                    f"make_dataset: array {key!r} has a dim of its own name ({tuple(var_dims)!r}), "
                    "which would make it a coordinate; rename the array or the dim"
                )
        ds = xr.Dataset(variables)
    else:
        raise ParameterError(
            f"make_dataset: cannot make a dataset of a {type(data).__name__}; give an "
            "xarray.Dataset, a named xarray.DataArray or a mapping of name -> array"
        )
    if not ds.data_vars:
        raise ParameterError("make_dataset: the dataset has no data variables; give at least one")
    ds.attrs.update(dict(attrs or {}))
    for var in ds.variables.values():
        var.encoding = {}
    return ds


def _chunk_lengths(ds: xr.Dataset, chunks: int | Mapping[str, int] | None) -> dict[str, int]:
    from minjiang.core.errors import ParameterError

    if chunks is None:
        return {}
    sizes = {str(k): int(v) for k, v in ds.sizes.items()}
    if isinstance(chunks, int):
        return {d: min(max(1, chunks), max(n, 1)) for d, n in sizes.items()}
    unknown = sorted(set(chunks) - set(sizes))
    if unknown:
        raise ParameterError(
            f"make_dataset: chunks names dims {unknown!r} that the dataset does not have "
            f"(it has {sorted(sizes)!r})"
        )
    for d, c in chunks.items():
        if int(c) < 1 and int(c) != -1:
            raise ParameterError(
                f"make_dataset: chunk length {c!r} of dim {d!r} must be >= 1 (or -1: the whole dim)"
            )
    return {str(d): int(c) for d, c in chunks.items()}


def _memory_reader() -> Any:
    """The reader :func:`make_dataset` ingests through (built on first use)."""
    global _READER
    if _READER is None:
        from minjiang.core._reader import Reader
        from pydantic import BaseModel, ConfigDict

        class Params(BaseModel):
            model_config = ConfigDict(extra="forbid", frozen=True)
            chunks: dict[str, int] = {}

        class ArraysReader(Reader):
            """Arrays a test made in memory, handed over as a Zarr folder."""

            name = "testing.arrays"
            version = "1"
            description = "NumPy/xarray data a test made (minjiang.core.testing.make_dataset)"
            params = Params
            supports_directories = True

            def open(self, files: list[Path], params: Any) -> xr.Dataset:
                import xarray as xr

                root = os.path.commonpath([str(f) for f in files])
                return xr.open_zarr(root, consolidated=False, zarr_format=3, chunks=None).load()

            def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
                return dict(params.chunks) or None

            def describe_sources(self, files: Sequence[Path]) -> list[dict[str, Any]]:
                return [
                    {
                        "name": "in-memory arrays (minjiang.core.testing.make_dataset)",
                        "bytes": sum(f.stat().st_size for f in files),
                    }
                ]

        _READER = ArraysReader()
    return _READER


_READER: Any = None


class _ArraysPlugin:
    """Registers the reader of :func:`make_dataset` for the duration of one ingest."""

    def __init__(self) -> None:
        from minjiang.core.hookspecs import hookimpl

        reader = _memory_reader()
        self.minjiang_register_readers = hookimpl(lambda: [reader])


def make_dataset(
    runtime: Runtime,
    data: Any,
    *,
    chunks: int | Mapping[str, int] | None = None,
    name: str | None = None,
    dims: Sequence[str] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Result:
    """Commit NumPy arrays or xarray objects into the runtime's store as a dataset.

    The data goes through the real ingest path (the ``testing.arrays`` reader, planned
    and written like any file): the dataset is content-addressed, its chunks carry
    digests, and its catalog record is a real one, so operators run on it exactly as
    on ingested files.

    Parameters
    ----------
    runtime : Runtime
        Where to commit it (the ``runtime`` fixture, say).
    data : xarray.Dataset, xarray.DataArray or mapping
        A Dataset; a named DataArray; or ``{name: DataArray | (dims, values) | ndarray}``.
        Coordinates and attributes are kept.
    chunks : int or mapping, optional
        Chunk length per dim (``{"time": 5, "y": 7}``; one int for every dim; ``-1``:
        the whole dim). Default: storage's default chunking.
    name : str, optional
        A catalog name (``"test/cube"``).
    dims : sequence of str, optional
        Dim names of plain NumPy arrays (default xarray's ``dim_0, dim_1, ...``).
    attrs : mapping, optional
        Dataset attributes to add.

    Returns
    -------
    Result
        The committed dataset (``result.id``; ``result.to_xarray()``); committing the
        same data and chunking twice gives the same id.

    Raises
    ------
    ParameterError
        For data that is not arrays, chunks naming unknown dims, or arrays whose dims
        are not given.
    """
    import shutil
    import tempfile

    ds = _as_dataset(data, dims=dims, attrs=attrs)
    lengths = _chunk_lengths(ds, chunks)
    folder = Path(tempfile.mkdtemp(prefix="minjiang-make-dataset-"))
    try:
        source = folder / "source.zarr"
        ds.to_zarr(source, mode="w", zarr_format=3, consolidated=False)
        plugin = _ArraysPlugin()
        with tmp_plugin(runtime, plugin, name="minjiang-testing-arrays"):
            return runtime.ingest("testing.arrays", [source], name=name, params={"chunks": lengths})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- conformance
#: A chunking of :class:`OperatorConformance`: ``"whole"`` (one chunk), ``"uneven"``
#: (about three chunks per dim whose length does not divide the dim), one int for
#: every dim, or ``{dim: length}``.
Chunking = str | int | Mapping[str, int]


def _uneven(n: int) -> int:
    if n < 3:
        return max(n, 1)
    c = n // 3 + 1
    while c < n and n % c == 0:
        c += 1
    return c


def conformance_chunks(sizes: Mapping[str, int], chunking: Chunking) -> dict[str, int]:
    """The chunk length per dim a :class:`OperatorConformance` chunking gives for
    ``sizes`` (dim -> length).

    ``"uneven"`` gives each dim of 3 cells or more a length that does not divide it
    (``10 -> 4``: chunks of 4, 4 and 2), so the last block of every dim is short.
    """
    from minjiang.core.errors import ParameterError

    if chunking == "whole":
        return {d: max(n, 1) for d, n in sizes.items()}
    if chunking == "uneven":
        return {d: _uneven(n) for d, n in sizes.items()}
    if isinstance(chunking, int) and not isinstance(chunking, bool):
        return {d: max(1, min(chunking, n)) for d, n in sizes.items()}
    if isinstance(chunking, Mapping):
        return {d: int(chunking.get(d, n)) for d, n in sizes.items()}
    raise ParameterError(
        f"chunking {chunking!r} must be 'whole', 'uneven', an int or a mapping dim -> length"
    )


def _gpu_missing() -> str | None:
    from minjiang.core._executors import LocalExecutor

    return None if LocalExecutor().gpus() > 0 else "no CUDA device (or CuPy) in this process"


def _simulator() -> bool:
    try:
        from numba import config
    except ImportError:
        return False
    return bool(getattr(config, "ENABLE_CUDASIM", False))


_DECLARED: dict[tuple[str, tuple[int, ...]], tuple[str, ...]] = {}


def _declared_backends(cls: type[OperatorConformance]) -> tuple[str, ...]:
    """The backends the class's operator declares (read once per operator and plugins)."""
    key = (cls.operator, tuple(id(p) for p in cls.plugins))
    if key not in _DECLARED:
        try:
            from minjiang.core._plugins import Registry, make_plugin_manager

            reg = Registry(*make_plugin_manager(cls.plugins))
            _DECLARED[key] = tuple(reg.operator(cls.operator).backends)
        except Exception:
            _DECLARED[key] = ("cpu",)  # the test itself then reports what is wrong
    return _DECLARED[key]


class _PlanInfo:
    """An input as operator callables see it at plan time (for the simulator run)."""

    def __init__(self, name: str, da: xr.DataArray) -> None:
        self.name = name
        self.dims = tuple(str(d) for d in da.dims)
        self.shape = tuple(da.shape)
        self.dtype = str(da.dtype)
        self.chunks = tuple(da.shape)
        self.attrs = dict(da.attrs)
        self.dataset_id = ""
        self._da = da
        self.coord_names = tuple(sorted(str(c) for c in da.coords))

    @property
    def info(self) -> _PlanInfo:
        return self

    def coord(self, name: str) -> Any:
        import numpy as np

        return np.asarray(self._da.coords[name].values)


class OperatorConformance:
    """Check an operator against its NumPy reference: subclass it in a test module.

    Set :attr:`operator` (and :attr:`params`), implement :meth:`make_inputs` and
    :meth:`reference`; the subclass (named ``Test...``) then runs one test per
    chunking in :attr:`chunkings` and per backend the operator declares:

    ``cpu``
        the operator run through a runtime (the ``runtime`` fixture, ``local``
        executor) with ``backend="cpu"``;
    ``gpu``
        the same with ``backend="gpu"``, when the operator declares ``gpu``; skipped
        where no CUDA device is visible;
    ``cudasim``
        when the operator declares ``gpu`` and numba's CUDA simulator is on
        (``NUMBA_ENABLE_CUDASIM=1``): a :class:`~minjiang.core.Map` kernel is called
        block by block on the ``gpu`` backend with NumPy blocks, so numba.cuda kernels
        run in the simulator. Skipped otherwise, for other patterns, and for kernels
        that use CuPy (the simulator runs numba.cuda only).

    Each chunking commits the inputs with :func:`make_dataset`, and the run is planned
    with the smallest memory budget that fits, so that every task covers one storage
    chunk: every chunk boundary is a block boundary the kernel sees (halos across
    blocks, short blocks at the array's end).

    Outputs are compared with :meth:`assert_output_close`: shape, dims, and values
    within :attr:`rtol`/:attr:`atol` (default by dtype: exact for integers and
    booleans, ``1e-5`` for float32, ``1e-10`` for float64, relative to the largest
    magnitude of the reference, at least 1), NaN where the reference has NaN.
    """

    #: The registered operator name, ``domain.operator``.
    operator: ClassVar[str] = ""
    #: Its parameters (validated by the operator's model).
    params: ClassVar[Mapping[str, Any]] = {}
    #: Chunkings to check (see :func:`conformance_chunks`).
    chunkings: ClassVar[Sequence[Chunking]] = ("whole", "uneven")
    #: Tolerances; ``None`` picks them by the output's dtype.
    rtol: ClassVar[float | None] = None
    atol: ClassVar[float | None] = None
    #: Plugins to register for the test (a plugin under development, not installed).
    plugins: ClassVar[Sequence[Any]] = ()
    #: The seed of the generator :meth:`make_inputs` receives.
    seed: ClassVar[int] = 0

    # -- what a subclass provides (checked when its tests are collected):
    #    make_inputs(rng) -> the operator's array inputs by input name: an
    #      xarray.Dataset whose variables are named like the inputs, or a mapping of
    #      input name to a DataArray, a (dims, values) pair or a NumPy array (one grid);
    #    reference(inputs, params) -> the expected outputs, output name -> array,
    #      computed on the whole arrays with NumPy/SciPy (params: the validated model).
    if TYPE_CHECKING:

        def make_inputs(self, rng: np.random.Generator) -> Any: ...

        def reference(
            self, inputs: Mapping[str, xr.DataArray], params: Any
        ) -> Mapping[str, Any]: ...

    # -- the tests
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "conformance_case" not in metafunc.fixturenames:
            return
        missing = [m for m in ("make_inputs", "reference") if not callable(getattr(self, m, None))]
        if not self.operator or missing:
            what = [*(["operator = 'domain.name'"] if not self.operator else []), *missing]
            raise TypeError(
                f"{type(self).__name__} is an OperatorConformance without {', '.join(what)}: "
                "a conformance class names its operator and defines make_inputs(rng) and "
                "reference(inputs, params)"
            )
        backends = ["cpu"]
        if "gpu" in _declared_backends(type(self)):
            backends += ["gpu", "cudasim"]
        cases = []
        for backend in backends:
            marks = [pytest.mark.gpu] if backend == "gpu" else []
            for i, chunking in enumerate(self.chunkings):
                label = chunking if isinstance(chunking, str) else f"chunks{i}"
                cases.append(
                    pytest.param((backend, chunking), id=f"{backend}-{label}", marks=marks)
                )
        metafunc.parametrize("conformance_case", cases)

    def test_conforms(self, runtime: Runtime, conformance_case: tuple[str, Chunking]) -> None:
        """The operator equals its reference on this backend and chunking."""
        backend, chunking = conformance_case
        self.assert_conforms(runtime, chunking=chunking, backend=backend)

    # -- the machinery
    def assert_conforms(
        self, runtime: Runtime, *, chunking: Chunking = "uneven", backend: str = "cpu"
    ) -> None:
        """Run the operator on ``backend`` with ``chunking`` and compare with
        :meth:`reference`; ``AssertionError`` naming the output on a mismatch."""
        if backend == "gpu":
            reason = _gpu_missing()
            if reason:
                pytest.skip(f"{self.operator}: gpu backend not checked: {reason}")
        if backend == "cudasim" and not _simulator():
            pytest.skip(
                f"{self.operator}: set NUMBA_ENABLE_CUDASIM=1 to run its numba.cuda kernels "
                "in numba's CUDA simulator"
            )
        import numpy as np

        with contextlib.ExitStack() as stack:
            for i, plugin in enumerate(self.plugins):
                stack.enter_context(tmp_plugin(runtime, plugin, name=f"conformance-{i}"))
            op = runtime.registry.operator(self.operator)
            model = op.validate_params(self.params)
            ds = _as_dataset(self.make_inputs(np.random.default_rng(self.seed)))
            arrays = [i.name for i in op.inputs if i.kind == "array" and i.name in ds.data_vars]
            missing = [i.name for i in op.inputs if not i.optional and i.name not in ds.data_vars]
            if missing:
                raise AssertionError(
                    f"{type(self).__name__}.make_inputs gave {sorted(map(str, ds.data_vars))!r} "
                    f"but {self.operator} needs inputs {missing!r}"
                )
            inputs = {name: ds[name] for name in arrays}
            expected = dict(self.reference(inputs, model))
            if not expected:
                raise AssertionError(
                    f"{type(self).__name__}.reference returned no outputs; return the "
                    f"expected value of each output of {self.operator} by name"
                )
            primary = ds[op.primary.name]
            sizes = {str(d): int(n) for d, n in zip(primary.dims, primary.shape, strict=True)}
            chunks = conformance_chunks(sizes, chunking)
            where = f"{self.operator} on {backend}, chunks {chunks}"
            if backend == "cudasim":
                got = self._simulate(op, model, inputs, chunks)
                for name, want in expected.items():
                    if name not in got:
                        raise AssertionError(f"{where}: the kernel returned no output {name!r}")
                    self.assert_output_close(got[name], want, f"{where}: output {name!r}")
                return
            got_ds, tables = self._run(runtime, op, ds, chunks, arrays, backend)
        for name, want in expected.items():
            if name in tables:
                self.assert_table_close(tables[name], want, f"{where}: table {name!r}")
                continue
            if name not in got_ds:
                raise AssertionError(
                    f"{where}: no output {name!r}; the run wrote {sorted(map(str, got_ds))!r}"
                )
            self.assert_output_close(got_ds[name], want, f"{where}: output {name!r}")

    def _run(
        self,
        runtime: Runtime,
        op: Operator,
        ds: xr.Dataset,
        chunks: Mapping[str, int],
        arrays: Sequence[str],
        backend: str,
    ) -> tuple[Any, dict[str, Any]]:
        from minjiang.core._pipeline import Pipeline, Step
        from minjiang.core.errors import MemoryBudgetError

        lengths = {d: c for d, c in chunks.items()}
        for var in ds.data_vars.values():  # other dims of other inputs: whole
            for d, n in zip(var.dims, var.shape, strict=True):
                lengths.setdefault(str(d), max(int(n), 1))
        src = make_dataset(runtime, ds, chunks=lengths)
        step = Step(
            id="conformance",
            operator=op.name,
            inputs={k: f"{src.id}:{k}" for k in arrays},
            params=dict(self.params),
            backend=backend,  # type: ignore[arg-type]
        )
        pipe = Pipeline(steps=[step])
        # the smallest budget that plans gives one storage chunk per task
        budget = runtime.memory_budget
        lo, hi = 10.0, math.log2(max(budget, 2**11))
        best = budget
        try:
            for _ in range(12):
                mid = (lo + hi) / 2
                runtime.memory_budget = int(2**mid)
                try:
                    runtime.plan(pipe, reuse=False)
                except MemoryBudgetError:
                    lo = mid
                else:
                    hi, best = mid, int(2**mid)
            runtime.memory_budget = best
            out = runtime.run_pipeline(pipe, reuse=False).results["conformance"]
        finally:
            runtime.memory_budget = budget
        tables = {t: out.table(t) for t in out.record.tables}
        return out.to_xarray().load(), tables

    def _simulate(
        self,
        op: Operator,
        model: Any,
        inputs: Mapping[str, xr.DataArray],
        chunks: Mapping[str, int],
    ) -> dict[str, Any]:
        """Call a Map kernel block by block on the ``gpu`` backend (NumPy blocks)."""
        import itertools

        import numpy as np
        from minjiang.core._operator import BlockContext, Map, import_dotted
        from minjiang.kernels.gaussian import pad_boundary

        pattern = op.pattern
        if not isinstance(pattern, Map):
            pytest.skip(
                f"{op.name}: the simulator check runs Map kernels block by block; a "
                f"{pattern.pattern} operator's gpu backend is checked on a GPU"
            )
        infos = {k: _PlanInfo(k, v) for k, v in inputs.items()}
        primary = inputs[op.primary.name]
        dims = tuple(str(d) for d in primary.dims)
        shape = tuple(primary.shape)
        halo = dict(pattern.halo(model, infos) if callable(pattern.halo) else pattern.halo)
        boundary = pattern.boundary(model) if callable(pattern.boundary) else pattern.boundary
        outputs = op.resolve_outputs(model, infos)  # type: ignore[arg-type]
        names = tuple(o.name for o in outputs)
        padded = {}
        for k, da in inputs.items():
            pads = [(halo.get(str(d), 0),) * 2 if str(d) in dims else (0, 0) for d in da.dims]
            padded[k] = pad_boundary(np.asarray(da.values), pads, boundary)
        kernel = (
            import_dotted(pattern.kernel) if isinstance(pattern.kernel, str) else pattern.kernel
        )
        starts = [range(0, n, chunks[d]) for d, n in zip(dims, shape, strict=True)]
        result: dict[str, Any] = {}
        for task, origin in enumerate(itertools.product(*starts)):
            region = {
                d: slice(o, min(o + chunks[d], n))
                for d, o, n in zip(dims, origin, shape, strict=True)
            }
            blocks = {}
            for k, da in inputs.items():
                sl = tuple(
                    slice(region[str(d)].start, region[str(d)].stop + 2 * halo.get(str(d), 0))
                    if str(d) in region
                    else slice(None)
                    for d in da.dims
                )
                blocks[k] = padded[k][sl]
            coords = {
                d: np.asarray(primary.coords[d].values)[region[d]]
                for d in dims
                if d in primary.coords and primary.coords[d].dims == (d,)
            }
            ctx = BlockContext(
                operator=op.name,
                backend="gpu",
                task=task,
                dims=dims,
                region=region,
                halo={d: (halo.get(d, 0), halo.get(d, 0)) for d in dims},
                sizes=dict(zip(dims, shape, strict=True)),
                coords=coords,
                attrs={k: dict(v.attrs) for k, v in inputs.items()},
                n_tasks=math.prod(len(r) for r in starts),
                outputs=names,
            )
            try:
                got = kernel(blocks, model, ctx)
            except ModuleNotFoundError as err:
                if "cupy" in str(err):
                    pytest.skip(
                        f"{op.name}: its gpu kernel uses CuPy, which numba's simulator does "
                        "not run; it is checked on a GPU"
                    )
                raise
            for name, value in got.items():
                value = np.asarray(value)
                interior = tuple(region[d].stop - region[d].start for d in dims)
                if value.shape != interior:  # the padded shape: crop the halo
                    value = value[
                        tuple(
                            slice(halo.get(d, 0), halo.get(d, 0) + n)
                            for d, n in zip(dims, interior, strict=True)
                        )
                    ]
                full = result.setdefault(name, np.empty(shape, dtype=value.dtype))
                full[tuple(region[d] for d in dims)] = value
        return result

    # -- comparisons (override to loosen or tighten)
    def tolerance(self, dtype: Any) -> tuple[float, float]:
        """``(rtol, atol)`` for an output of ``dtype`` (before scaling by magnitude)."""
        import numpy as np

        dt = np.dtype(dtype)
        default = 0.0 if dt.kind in "biu" else (1e-5 if dt.itemsize <= 4 else 1e-10)
        return (
            self.rtol if self.rtol is not None else default,
            self.atol if self.atol is not None else default,
        )

    def assert_output_close(self, actual: Any, expected: Any, where: str) -> None:
        """``actual`` (the operator's output) equals ``expected`` (the reference)."""
        import numpy as np
        import xarray as xr

        if isinstance(actual, xr.DataArray) and isinstance(expected, xr.DataArray):
            if tuple(actual.dims) != tuple(expected.dims):
                raise AssertionError(
                    f"{where}: dims {tuple(actual.dims)!r}, reference {tuple(expected.dims)!r}"
                )
        got = np.asarray(actual)
        want = np.asarray(expected)
        if got.shape != want.shape:
            raise AssertionError(f"{where}: shape {got.shape}, reference {want.shape}")
        rtol, atol = self.tolerance(got.dtype)
        if got.dtype.kind in "biu" and want.dtype.kind in "biu" and rtol == atol == 0:
            np.testing.assert_array_equal(got, want, err_msg=where)
            return
        finite = np.abs(want[np.isfinite(want)]) if want.dtype.kind in "fc" else np.abs(want)
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        np.testing.assert_allclose(
            got.astype(np.float64),
            want.astype(np.float64),
            rtol=rtol,
            atol=atol * scale,
            equal_nan=True,
            err_msg=where,
        )

    def assert_table_close(self, actual: Any, expected: Any, where: str) -> None:
        """A table output equals the reference's (rows sorted by every column first)."""
        import pandas as pd

        def frame(t: Any) -> Any:
            df = t.to_pandas() if hasattr(t, "to_pandas") else pd.DataFrame(t)
            return df.sort_values(list(df.columns)).reset_index(drop=True)

        got, want = frame(actual), frame(expected)
        if list(got.columns) != list(want.columns):
            raise AssertionError(
                f"{where}: columns {list(got.columns)!r}, reference {list(want.columns)!r}"
            )
        if len(got) != len(want):
            raise AssertionError(f"{where}: {len(got)} rows, reference {len(want)}")
        for col in want.columns:
            self.assert_output_close(got[col].to_numpy(), want[col].to_numpy(), f"{where}.{col}")


def assert_one_writer_per_chunk(plan: Any) -> None:
    """Fail if two tasks of a plan write the same chunk of an output array.

    Tasks run in parallel and write chunks without locks, so each chunk must have one
    writer (see docs/architecture.md). ``plan`` is what :meth:`Runtime.plan` returns.
    Scratch arrays (rechunk targets), whose chunks the plan does not list, are checked
    for overlapping regions instead.
    """
    import itertools

    def overlap(a: tuple[slice, ...], b: tuple[slice, ...]) -> bool:
        return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b, strict=True))

    for step in plan.steps:
        arrays = getattr(step, "arrays", None)
        if arrays is None:  # an ingest
            continue
        for stage in step.stages:
            owner: dict[tuple[str, tuple[int, ...]], str] = {}
            scratch: list[tuple[str, tuple[slice, ...], str]] = []
            for task in stage.tasks:
                for w in task.writes:
                    where = f"step {step.step!r}, stage {stage.name!r}: tasks"
                    if w.scratch or w.array not in arrays:
                        for name, region, other in scratch:
                            if name == w.array and overlap(region, w.region):
                                raise AssertionError(
                                    f"{where} {other} and {task.key} both write {w.region!r} "
                                    f"of scratch array {w.array!r}"
                                )
                        scratch.append((w.array, w.region, task.key))
                        continue
                    chunks = arrays[w.array].chunks
                    ranges = [
                        range(r.start // c, -(-r.stop // c))
                        for r, c in zip(w.region, chunks, strict=True)
                    ]
                    for idx in itertools.product(*ranges):
                        if (w.array, idx) in owner:
                            raise AssertionError(
                                f"{where} {owner[w.array, idx]} and {task.key} both write "
                                f"chunk {idx} of {w.array!r}"
                            )
                        owner[w.array, idx] = task.key


@pytest.fixture
def minjiang_store(tmp_path: Path) -> Path:
    """A fresh, empty store folder."""
    return tmp_path / "store"


@pytest.fixture
def runtime(minjiang_store: Path) -> Iterator[Runtime]:
    """A fresh runtime with the ``local`` executor on a temporary store."""
    from minjiang.core._runtime import Runtime

    rt = Runtime(store=minjiang_store, executor="local", memory_budget="2GiB")
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One local Ray per test session (starting Ray costs seconds)."""
    ray = pytest.importorskip("ray")
    started = False
    if not ray.is_initialized():
        ray.init(
            num_cpus=int(os.environ.get("MINJIANG_TEST_RAY_CPUS", "2")),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        started = True
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def ray_runtime(ray_session: Any, minjiang_store: Path) -> Iterator[Runtime]:
    """A fresh runtime with the ``ray`` executor, on the session's Ray."""
    from minjiang.core._runtime import Runtime

    rt = Runtime(store=minjiang_store, executor="ray", memory_budget="2GiB")
    yield rt
    rt.close()  # does not stop the shared Ray: this runtime did not start it
