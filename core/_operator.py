"""The operator contract: what a plugin registers, and what the planner reads.

An :class:`Operator` is a typed, versioned, namespaced analysis. Its *chunk pattern*
(:class:`Map`, :class:`Reduce`, :class:`FullAxis`, :class:`Aggregate`,
:class:`Composite`) is the whole vocabulary the planner needs to split it into
storage-to-storage tasks. Kernel functions are named by object or by dotted path
(``"package.module:function"``); tasks carry only the dotted path, so Ray workers
import them and never see a PluginManager.

Kernel signatures, per pattern (``arrays`` maps input names to NumPy or CuPy blocks,
table inputs to ``pyarrow.Table``; ``ctx`` is a :class:`BlockContext`):

========== =======================================================================
Map        ``kernel(arrays, params, ctx) -> {output: block or table}``
Reduce     ``partial(arrays, params, ctx) -> state``;
           ``combine([state, ...], params) -> state``;
           ``finalize(state, params, ctx) -> {output: block}``
FullAxis   ``kernel(arrays, params, ctx) -> {output: block or table}``
Aggregate  ``partial(arrays, params, ctx) -> state``;
           ``combine([state, ...], params) -> state``;
           ``finalize(state, params) -> {table output: table}``
========== =======================================================================

A *state* is a ``dict[str, numpy.ndarray]``. A *table* is a ``pyarrow.Table``, a
``pandas.DataFrame`` or a ``dict`` of equal-length 1-D arrays.

The combine contract is the same for both patterns: ``combine`` receives a non-empty
list of states (in a fixed order: partition order for a reduce, task order for an
aggregate) and returns one state of the same form; it must be associative, so any
grouping of the list gives the same result. ``finalize`` derives the outputs once,
from the combined state.

Callables an operator gives for its outputs, halo, pattern dims, state or composite
expansion receive ``(params, inputs)`` with each array input as a :class:`PlanInput`:
the input array's metadata (``name``, ``dims``, ``shape``, ``dtype``, ``chunks``,
``attrs``) and, through :meth:`PlanInput.coord`, the decoded values of its dataset's
coordinates (a time axis to group by, a grid to regrid from), read once per plan.

A :class:`Reduce` declares its partial state with a :class:`State`: one
:class:`StateArray` per key the partial returns, with its dtype and the trailing dims
it has beyond the output block. Each state array is shaped like the output block (the
block over the kept dims) followed by those trailing dims: a per-region sum for ten
regions over a ``time`` block of 31 is ``StateArray("sum", "float64", extra=(10,))``,
shape ``(31, 10)``. The planner sizes the memory of partial and combine tasks and the
scratch arrays that hold the states from this declaration, and a partial that returns
anything else fails naming the key. The declaration may be a callable
``(params, inputs) -> State`` when it depends on the parameters.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from minjiang.core.errors import ContractError, ParameterError
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import numpy as np
    from minjiang.storage import ArrayInfo

__all__ = [
    "Aggregate",
    "ArrayOutput",
    "BlockContext",
    "Composite",
    "ExpandContext",
    "FullAxis",
    "Input",
    "Map",
    "NoParams",
    "Operator",
    "PlanInput",
    "Reduce",
    "State",
    "StateArray",
    "SubStep",
    "TableOutput",
    "TaskSize",
    "dotted_path",
    "import_dotted",
]

Boundary = Literal["reflect", "mirror", "nearest", "wrap", "constant"]
KernelRef = Callable[..., Any] | str

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class PlanInput:
    """An array input as operator callables see it at plan time.

    Attributes of the input array's :class:`~minjiang.storage.ArrayInfo` (``name``,
    ``dims``, ``shape``, ``dtype``, ``chunks``, ``attrs``, ``dataset_id``) read
    through; :meth:`coord` gives the decoded values of a coordinate of the input's
    dataset, :meth:`values` those of the (small) input array itself. Nothing is read
    until asked for.
    """

    __slots__ = ("_coords", "_info", "_read")

    def __init__(
        self,
        info: ArrayInfo,
        coords: Mapping[str, ArrayInfo],
        read: Callable[[ArrayInfo], Any],
    ) -> None:
        self._info = info
        self._coords = dict(coords)
        self._read = read

    def __getattr__(self, name: str) -> Any:
        return getattr(self._info, name)

    def __repr__(self) -> str:
        return f"PlanInput({self._info!r})"

    @property
    def info(self) -> ArrayInfo:
        """The input array's metadata."""
        return self._info

    @property
    def coord_names(self) -> tuple[str, ...]:
        """The coordinates of the input's dataset."""
        return tuple(sorted(self._coords))

    def values(self) -> np.ndarray:
        """The decoded values of the input array itself, read whole: for small arrays
        a step reads at plan time (the 2-D latitudes of a curvilinear grid).

        Raises
        ------
        ContractError
            If the array holds more than 64 MiB (read it in tasks instead).
        """
        import math

        import numpy as np

        nbytes = math.prod(self._info.shape) * np.dtype(self._info.dtype).itemsize
        if nbytes > 64 << 20:
            raise ContractError(
                f"input {self._info.name!r} (dataset {self._info.dataset_id}) holds "
                f"{nbytes / 2**20:.0f} MiB, over the 64 MiB a plan may read; it is read by "
                "tasks, not at plan time"
            )
        return np.asarray(self._read(self._info))

    def coord(self, name: str) -> np.ndarray:
        """The decoded values of coordinate ``name`` (times as ``datetime64`` or cftime).

        Raises
        ------
        ContractError
            If the input's dataset has no such coordinate (the message lists those it has).
        """
        if name not in self._coords:
            raise ContractError(
                f"input {self._info.name!r} (dataset {self._info.dataset_id}) has no "
                f"coordinate {name!r}; it has {sorted(self._coords)!r}"
            )
        import numpy as np

        return np.asarray(self._read(self._coords[name]))


class NoParams(BaseModel):
    """The parameter model of an operator that takes no parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def dotted_path(ref: KernelRef) -> str:
    """Return ``"module:qualname"`` for a module-level function (or pass a string through)."""
    if isinstance(ref, str):
        if ":" not in ref:
            raise ContractError(
                f"kernel reference {ref!r} must look like 'package.module:function'"
            )
        return ref
    module, qualname = getattr(ref, "__module__", None), getattr(ref, "__qualname__", "")
    if not module or "<" in qualname:
        raise ContractError(
            f"kernel {ref!r} must be a module-level function so that workers can import it; "
            "define it at the top level of a module"
        )
    return f"{module}:{qualname}"


def import_dotted(path: str) -> Any:
    """Import the object named by ``"package.module:attr.attr"``."""
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclasses.dataclass(frozen=True)
class Input:
    """One input of an operator.

    Parameters
    ----------
    name
        The key under which the kernel receives the block.
    dims
        Required dimension names, in order, or ``None`` for any.
    dtypes
        Allowed dtypes: names (``"float32"``) or NumPy kind letters (``"f"``, ``"i"``,
        ``"u"``, ``"b"``); ``None`` allows any.
    kind
        ``"array"`` (read block by block) or ``"table"`` (read whole by every task,
        unless ``tiled``).
    tiled
        For a table partitioned by grid tile (parts named with
        :func:`minjiang.storage.tile_part_name`): each task reads only the parts whose
        tiles overlap its block of the primary array input, halo included.
    whole
        Dims that every task reads in full (not aligned with the output blocks), for
        example the ``doy`` axis of a climatology joined onto a time series.
    optional
        The input may be left out of a step.
    identity
        ``False`` leaves the input's dataset out of the step's content id: for an input
        the step reads only for what its parameters already pin down. A regrid's
        weights step reads the source grid, which its parameters carry, so every
        dataset on that grid shares one weights dataset.
    """

    name: str
    dims: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] | None = None
    kind: Literal["array", "table"] = "array"
    whole: tuple[str, ...] = ()
    optional: bool = False
    tiled: bool = False
    identity: bool = True

    def __post_init__(self) -> None:
        if self.tiled and self.kind != "table":
            raise ValueError(f"input {self.name!r}: tiled=True is for kind='table' inputs")

    def check(self, info: ArrayInfo, operator: str) -> None:
        """Raise :class:`ContractError` when ``info`` breaks this input's contract."""
        if self.dims is not None and tuple(info.dims) != tuple(self.dims):
            raise ContractError(
                f"{operator}: input {self.name!r} has dims {tuple(info.dims)!r}, expected "
                f"{tuple(self.dims)!r}; transpose or rename the dimensions before this step"
            )
        if self.dtypes is not None:
            import numpy as np

            dt = np.dtype(info.dtype)
            if dt.name not in self.dtypes and dt.kind not in self.dtypes:
                raise ContractError(
                    f"{operator}: input {self.name!r} has dtype {dt.name!r}, expected one of "
                    f"{self.dtypes!r}; cast it (e.g. with array.cast) before this step"
                )


@dataclasses.dataclass(frozen=True)
class ArrayOutput:
    """One array the operator writes.

    ``dims=None`` takes the pattern's default (map and full_axis: the primary input's
    dims; reduce: those minus the reduced dims). New dims need a size in ``sizes``
    and may get coordinate values in ``coords``; ``dtype=None`` keeps the primary
    input's dtype. A ``coords`` entry is the values of a 1-D coordinate named like its
    dim, or ``(dims, values, attrs)`` for any other (a scalar ``spatial_ref`` with a
    new ``GeoTransform``, say); it replaces the input's coordinate of that name.
    """

    name: str
    dtype: str | None = None
    dims: tuple[str, ...] | None = None
    sizes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    coords: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fill_value: Any = None


@dataclasses.dataclass(frozen=True)
class TableOutput:
    """One Parquet table the operator writes (``columns``: name -> Arrow type name)."""

    name: str
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)


Output = ArrayOutput | TableOutput


@dataclasses.dataclass(frozen=True)
class Map:
    """Blockwise over aligned inputs, with an optional halo per dim.

    ``halo`` is a mapping dim -> cells, or a callable ``(params, inputs) -> mapping``
    when it depends on parameters (a Gaussian's radius). The kernel receives blocks
    padded by the halo; at the true array edge the padding follows ``boundary``
    (SciPy's names: reflect, mirror, nearest, wrap, constant). It may return blocks of
    the padded shape (the halo is cropped) or of the interior shape.
    """

    kernel: KernelRef
    halo: Mapping[str, int] | Callable[..., Mapping[str, int]] = dataclasses.field(
        default_factory=dict
    )
    boundary: Boundary | Callable[..., Boundary] = "reflect"
    pattern: str = dataclasses.field(default="map", init=False)


@dataclasses.dataclass(frozen=True)
class StateArray:
    """One array of a reduction's partial state: ``name`` (the key the partial
    returns), its ``dtype``, and the sizes of the ``extra`` trailing dims it has after
    the output block's shape."""

    name: str
    dtype: str = "float64"
    extra: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,63}$", self.name):
            raise ContractError(
                f"state array name {self.name!r} must be a letter then letters, digits or "
                "underscores (at most 64)"
            )
        if any(int(n) < 1 for n in self.extra):
            raise ContractError(
                f"state array {self.name!r} has trailing sizes {self.extra!r}; each must be >= 1"
            )

    def shape(self, block: tuple[int, ...]) -> tuple[int, ...]:
        """The array's shape for an output block of shape ``block``."""
        return (*block, *(int(n) for n in self.extra))

    def nbytes(self, cells: int) -> int:
        """Bytes of the array for an output block of ``cells`` cells."""
        import math

        import numpy as np

        return cells * math.prod(self.extra) * int(np.dtype(self.dtype).itemsize)


@dataclasses.dataclass(frozen=True)
class State:
    """The partial state of a :class:`Reduce`: its arrays, each shaped like the output
    block followed by its own trailing dims."""

    arrays: tuple[StateArray, ...]

    def __post_init__(self) -> None:
        names = [a.name for a in self.arrays]
        if not names or len(set(names)) != len(names):
            raise ContractError(
                f"a reduction state needs at least one array and unique names, got {names!r}"
            )

    def nbytes(self, cells: int) -> int:
        """Bytes of one state for an output block of ``cells`` cells."""
        return sum(a.nbytes(cells) for a in self.arrays)


@dataclasses.dataclass(frozen=True)
class Reduce:
    """Reduce along ``dims``: per-block partial states and an associative combine.

    ``state`` declares what ``partial`` returns (a :class:`State`, or a callable
    ``(params, inputs) -> State``); see the module docstring for the contract.
    """

    dims: tuple[str, ...] | Callable[..., tuple[str, ...]]
    partial: KernelRef
    combine: KernelRef
    finalize: KernelRef
    state: State | Callable[..., State]
    pattern: str = dataclasses.field(default="reduce", init=False)

    def resolve_state(self, params: Any, inputs: Mapping[str, PlanInput]) -> State:
        """The declared state for these parameters and inputs."""
        state = self.state(params, inputs) if callable(self.state) else self.state
        if not isinstance(state, State):
            raise ContractError(
                f"a Reduce state declaration gave {type(state).__name__}; it must be a State"
            )
        return state


@dataclasses.dataclass(frozen=True)
class FullAxis:
    """The kernel needs the whole extent along ``dims`` (rechunked if the storage is not).

    ``dims`` may be a callable ``(params, inputs) -> dims`` when a parameter names them.
    """

    dims: tuple[str, ...] | Callable[..., tuple[str, ...]]
    kernel: KernelRef
    pattern: str = dataclasses.field(default="full_axis", init=False)


@dataclasses.dataclass(frozen=True)
class Aggregate:
    """(values, labels) -> table, through per-block partial states and a combine.

    ``halo`` works as for :class:`Map` (some aggregations look one cell beyond the
    block, e.g. to find label equivalences across block faces).
    """

    partial: KernelRef
    combine: KernelRef
    finalize: KernelRef
    halo: Mapping[str, int] | Callable[..., Mapping[str, int]] = dataclasses.field(
        default_factory=dict
    )
    boundary: Boundary = "constant"
    pattern: str = dataclasses.field(default="aggregate", init=False)


@dataclasses.dataclass(frozen=True)
class SubStep:
    """One node of a :class:`Composite`: an operator applied to the composite's inputs
    (by input name) or to the outputs of earlier sub-steps (by sub-step id)."""

    id: str
    operator: Operator
    inputs: Mapping[str, str]
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ExpandContext:
    """What a composite's ``expand`` may ask of the plan it is expanded in, given as
    its third argument when it takes one: ``expand(params, inputs, plan)``.

    ``budget`` is the run's memory budget in bytes (``--memory-budget``) and
    ``workers`` the number of tasks that run at once; :meth:`fits` asks the planner
    whether one operator applied to the composite's inputs plans within that
    budget, so a composite can take a shorter path when the data allow it (one task
    over the whole array instead of blocks and a merge).
    """

    budget: int
    workers: int
    _fits: Callable[[Operator, Mapping[str, str], Mapping[str, Any]], bool] = dataclasses.field(
        repr=False, compare=False
    )

    def fits(
        self,
        operator: Operator,
        inputs: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether ``operator`` with ``params``, its inputs mapped to the composite's
        inputs by name (as in :class:`SubStep`), plans within the memory budget."""
        return self._fits(operator, inputs, dict(params or {}))


@dataclasses.dataclass(frozen=True)
class Composite:
    """A small DAG of the other patterns. ``expand(params, inputs) -> [SubStep, ...]``,
    or ``expand(params, inputs, plan)`` with an :class:`ExpandContext`; the last
    sub-step's output is the composite's output. Intermediate datasets are
    content-addressed and cataloged as hidden, so they are reused like any other."""

    expand: Callable[..., list[SubStep]]
    pattern: str = dataclasses.field(default="composite", init=False)

    def sub_steps(
        self, params: Any, inputs: Mapping[str, PlanInput], plan: ExpandContext
    ) -> list[SubStep]:
        """The sub-steps for these parameters and inputs (``plan`` passed on to an
        ``expand`` that takes three arguments)."""
        import inspect

        positional = [
            p
            for p in inspect.signature(self.expand).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
        takes_plan = len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in positional)
        return self.expand(params, inputs, plan) if takes_plan else self.expand(params, inputs)


Pattern = Map | Reduce | FullAxis | Aggregate | Composite


@dataclasses.dataclass(frozen=True)
class TaskSize:
    """What the planner knows about one task when it projects its memory (bytes) and
    its kernel time: bytes read (with halos), bytes written, the output block's shape
    over ``dims`` (the primary input's dims), the primary input's item size, and the
    halo on each side per dim."""

    input_bytes: int
    output_bytes: int
    block_shape: tuple[int, ...]
    itemsize: int
    dims: tuple[str, ...] = ()
    halo: tuple[int, ...] = ()


def _default_memory(size: TaskSize, params: Any) -> int:
    # The input blocks (with halo), the output blocks, and one temporary as large as the
    # larger of the two (a NumPy expression's intermediate). A kernel that holds more
    # (float64 copies, sort buffers, per-cell tables) declares its own formula;
    # benchmarks/memory_model.py measures every built-in one against a real task.
    return size.input_bytes + size.output_bytes + max(size.input_bytes, size.output_bytes)


@dataclasses.dataclass(frozen=True)
class Operator:
    """The contract a plugin registers for one analysis.

    Parameters
    ----------
    name
        Namespaced ``domain.operator`` (lowercase, underscores).
    version
        Bumped whenever results change; part of every output's content id.
    inputs
        The inputs; the first array input is the *primary* one that sets the grid.
    outputs
        Arrays and tables written, or a callable ``(params, inputs) -> outputs``
        when they depend on parameters (``inputs`` maps names to ``ArrayInfo``).
    pattern
        How the work splits into chunk tasks.
    params
        A pydantic model; ``extra="forbid"`` is recommended so misspelt keys fail.
    memory
        ``(TaskSize, params) -> bytes`` projected peak per task, kernel scratch
        included. The default is twice the inputs plus twice the outputs.
    compute
        ``(TaskSize, params) -> seconds`` projected kernel time of one task on one
        core, for kernels slow enough to matter beside decoding (about 0.4 GB/s per
        core). The planner weighs it against decode amplification when it sizes tasks:
        a costly kernel with a halo is split over the workers even where each task
        then decodes more. ``None`` (default): the kernel costs nothing next to I/O.
    backends
        Backends the kernels support: ``"cpu"`` (numba), ``"gpu"`` (CuPy).
    """

    name: str
    version: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...] | Callable[..., tuple[Output, ...]]
    pattern: Pattern
    params: type[BaseModel] | None = None
    memory: Callable[[TaskSize, Any], int] = _default_memory
    compute: Callable[[TaskSize, Any], float] | None = None
    backends: tuple[str, ...] = ("cpu",)
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ContractError(
                f"operator name {self.name!r} must be 'domain.operator' in lowercase "
                "letters, digits and underscores (e.g. 'ocean.marine_heatwaves')"
            )
        if not any(i.kind == "array" for i in self.inputs) and not isinstance(
            self.pattern, Composite
        ):
            raise ContractError(f"operator {self.name!r} needs at least one array input")

    @property
    def domain(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def primary(self) -> Input:
        return next(i for i in self.inputs if i.kind == "array")

    def params_model(self) -> type[BaseModel]:
        return self.params if self.params is not None else NoParams

    def validate_params(self, params: Mapping[str, Any] | None) -> BaseModel:
        """Validate ``params`` against the model, raising :class:`ParameterError`."""
        from pydantic import ValidationError

        try:
            return self.params_model().model_validate(dict(params or {}))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(params)'}: {e['msg']}"
                for e in err.errors()
            )
            raise ParameterError(
                f"{self.name}: invalid parameters: {problems}. "
                f"See `minjiang plugins --operator {self.name}` for the parameter schema"
            ) from None

    def json_schema(self) -> dict[str, Any]:
        return self.params_model().model_json_schema()

    def resolve_outputs(self, params: Any, inputs: Mapping[str, PlanInput]) -> tuple[Output, ...]:
        outs = self.outputs(params, inputs) if callable(self.outputs) else self.outputs
        return tuple(outs)


@dataclasses.dataclass(frozen=True)
class BlockContext:
    """What a kernel knows about the block it is given.

    ``region`` is the output block in global index space over the primary input's
    dims; ``halo`` the cells of padding on each side of the arrays given; ``coords`` the
    coordinate values of the block (interior, no halo) for dims that have them;
    ``sizes`` the global size of each dim; ``attrs`` each input array's attributes;
    ``outputs`` the names of the arrays and tables the kernel is expected to return,
    ``dtypes`` the stored dtype of each output array.
    """

    operator: str
    backend: str
    task: int
    dims: tuple[str, ...]
    region: Mapping[str, slice]
    halo: Mapping[str, tuple[int, int]]
    sizes: Mapping[str, int]
    coords: Mapping[str, np.ndarray]
    attrs: Mapping[str, Mapping[str, Any]]
    n_tasks: int = 1
    outputs: tuple[str, ...] = ()
    dtypes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: output buffers a task worked in steps hands out again step after step (the
    #: runtime's, through ``core/_tasks.context``)
    _buffers: dict[str, np.ndarray] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )

    @property
    def origin(self) -> tuple[int, ...]:
        """Global index of the block's first interior cell, per dim."""
        return tuple(self.region[d].start for d in self.dims)

    def empty(self, name: str, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        """An uninitialised host array for output array ``name`` (dtype: its stored
        dtype unless given), for the kernel to fill and return as that output.

        In a task worked in steps it is the same memory step after step (the runtime
        has written the last step's output before the kernel is called again), so a
        kernel that fills it instead of allocating faults in no fresh pages per step;
        elsewhere it is a new ``numpy.empty``. Return it; keep nothing of it.
        """
        import numpy as np

        want = np.dtype(dtype if dtype is not None else self.dtypes[name])
        shape = tuple(int(n) for n in shape)
        if self._buffers is None:
            return np.empty(shape, want)
        old = self._buffers.get(name)
        if old is not None and old.shape == shape and old.dtype == want:
            return old
        self._buffers[name] = new = np.empty(shape, want)
        return new
