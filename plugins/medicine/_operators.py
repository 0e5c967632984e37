"""Operator contracts of the medicine plugin (kernels referenced by dotted path)."""

from __future__ import annotations

from typing import Any, Literal

from minjiang.core import (
    Aggregate,
    ArrayOutput,
    Composite,
    ExpandContext,
    FullAxis,
    Input,
    Map,
    Operator,
    SubStep,
    TableOutput,
    TaskSize,
)
from minjiang.core.errors import ContractError
from minjiang.plugins.medicine._geometry import (
    geometry_attrs,
    median_size,
    per_axis,
    sigma_voxels,
    spacing_of,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["OPERATORS"]

_K = "minjiang.plugins.medicine._kernels:"
_ZYX = ("z", "y", "x")
_REAL = ("b", "i", "u", "f")
# No "wrap": periodic edges have no meaning for a patient volume.
Boundary = Literal["reflect", "mirror", "nearest", "constant"]


class _Params(BaseModel):
    # NaN and infinities are data, never parameters: refuse them at validation
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _spacing_field() -> Any:
    return Field(
        default=None,
        description="Voxel size in mm (z, y, x); default: the input's 'spacing' attribute.",
    )


def _check_spacing(v: list[float] | None) -> list[float] | None:
    if v is not None and (len(v) != 3 or any(not (0 < x <= 10_000) for x in v)):
        raise ValueError("spacing needs three positive numbers (mm, at most 10000) for (z, y, x)")
    return v


# -- medicine.hu_window ----------------------------------------------------------------
class WindowParams(_Params):
    """Modality LUT (rescale) and VOI window."""

    center: float | None = Field(
        default=None, description="Window center; default: the image's DICOM window."
    )
    width: float | None = Field(
        default=None, description="Window width; default: the image's DICOM window."
    )
    function: Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"] | None = Field(
        default=None,
        description="VOI LUT function (PS3.3 C.11.2.1.2); default: the image's, else LINEAR.",
    )
    y_min: float = Field(default=0.0, description="Output value of the window's bottom.")
    y_max: float = Field(default=1.0, description="Output value of the window's top.")
    slope: float = Field(
        default=1.0, description="Rescale slope applied first (1 for data stored in HU)."
    )
    intercept: float = Field(default=0.0, description="Rescale intercept applied first.")
    dtype: Literal["float32", "float64"] = Field(
        default="float32", description="Floating type of the windowed output."
    )

    @model_validator(mode="after")
    def _check(self) -> WindowParams:
        if self.y_max <= self.y_min:
            raise ValueError(f"y_max ({self.y_max}) must be greater than y_min ({self.y_min})")
        if self.width is not None:
            if (self.function or "LINEAR") == "LINEAR" and self.width < 1:
                raise ValueError("a LINEAR window needs width >= 1 (PS3.3 C.11.2.1.2.1)")
            if self.width <= 0:
                raise ValueError("the window width must be > 0")
        return self


# -- projected memory per task (bytes; measured by benchmarks/memory_model.py) -------------
def _cells(size: TaskSize) -> int:
    n = 1
    for b in size.block_shape:
        n *= int(b)
    return n


def _pointwise_memory(size: TaskSize, params: Any) -> int:
    # the block and the output: one loop over the voxels
    return size.input_bytes + size.output_bytes


def _neighbourhood_memory(size: TaskSize, params: Any) -> int:
    # A block at the volume's edge is read, then copied into its padded shape (2 x the
    # padded input); the filter writes the output beside the padded block.
    return max(2 * size.input_bytes, size.input_bytes + size.output_bytes)


def _smoothing_memory(size: TaskSize, params: Any) -> int:
    # As a neighbourhood filter, plus the padded block converted to the float dtype the
    # filter computes in when the image is stored in another (int16 CT: 2 x its bytes).
    cells = _cells(size)
    padded = size.input_bytes // max(size.itemsize, 1)
    out_item = size.output_bytes // max(cells, 1)
    convert = padded * out_item if out_item != size.itemsize else 0
    return max(2 * size.input_bytes, size.input_bytes + convert + size.output_bytes)


def _scan_memory(size: TaskSize, params: Any) -> int:
    # a reduction to a small partial state (range, histogram, per-label sums)
    return size.input_bytes + size.input_bytes // 8 + 2 * size.output_bytes


def _mask_memory(size: TaskSize, params: Any) -> int:
    # the image, the boolean comparison and the uint8 mask
    return size.input_bytes + 2 * size.output_bytes


def _window_outputs(params: WindowParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    info = inputs.get("image")
    attrs = dict(getattr(info, "attrs", None) or {})
    if (params.center is None and "window_center" not in attrs) or (
        params.width is None and "window_width" not in attrs
    ):
        raise ContractError(
            "medicine.hu_window: the image carries no DICOM window; pass params={'center': ..., 'width': ...}"
        )
    return (
        ArrayOutput(
            "image",
            dtype=params.dtype,
            attrs=geometry_attrs(info, units="", long_name="windowed values"),
        ),
    )


HU_WINDOW = Operator(
    name="medicine.hu_window",
    version="1",
    inputs=(Input("image", dtypes=_REAL),),
    outputs=_window_outputs,
    pattern=Map(kernel=_K + "window_block"),
    params=WindowParams,
    memory=_pointwise_memory,
    backends=("cpu", "gpu"),
    description="Modality LUT and VOI windowing (LINEAR, LINEAR_EXACT, SIGMOID; DICOM PS3.3 C.11.2).",
)


# -- medicine.gaussian -------------------------------------------------------------------
class GaussianParams(_Params):
    """3-D Gaussian smoothing with sigma in millimetres."""

    sigma_mm: float | list[float] = Field(
        description="Standard deviation in mm: one value or (z, y, x)."
    )
    truncate: float = Field(
        default=4.0, gt=0, le=10, description="Kernel radius in standard deviations."
    )
    mode: Boundary = Field(
        default="reflect", description="Boundary mode at the array's edges (SciPy's)."
    )
    dtype: Literal["float32", "float64"] | None = Field(
        default=None, description="Output dtype; default float64 for float64 input, else float32."
    )
    spacing: list[float] | None = _spacing_field()

    @field_validator("spacing")
    @classmethod
    def _valid_spacing(cls, v: list[float] | None) -> list[float] | None:
        return _check_spacing(v)

    @field_validator("sigma_mm")
    @classmethod
    def _check_sigma(cls, v: float | list[float]) -> float | list[float]:
        vals = per_axis(v, "sigma_mm")
        if any(not (0 <= s <= 10_000) for s in vals):
            raise ValueError("sigma_mm must lie in [0, 10000] mm")
        return v

    @property
    def sigma_mm_zyx(self) -> tuple[float, float, float]:
        return per_axis(self.sigma_mm, "sigma_mm")


def _gaussian_halo(params: GaussianParams, inputs: dict[str, Any]) -> dict[str, int]:
    from minjiang.kernels.gaussian import gaussian_radius

    spacing = spacing_of(
        getattr(inputs.get("image"), "attrs", {}) or {}, params.spacing, "medicine.gaussian"
    )
    sig = sigma_voxels(params.sigma_mm_zyx, spacing)
    return {d: gaussian_radius(s, params.truncate) for d, s in zip(_ZYX, sig, strict=True)}


def _mode(params: Any) -> Boundary:
    return params.mode


def float_out(params: Any, info: Any) -> str:
    """The output dtype of a smoothing step: the ``dtype`` parameter, else by input."""
    if getattr(params, "dtype", None):
        return str(params.dtype)
    return "float64" if str(getattr(info, "dtype", "float32")) == "float64" else "float32"


def _gaussian_outputs(params: GaussianParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    info = inputs.get("image")
    return (
        ArrayOutput(
            "image",
            dtype=float_out(params, info),
            attrs=geometry_attrs(
                info,
                units=(getattr(info, "attrs", {}) or {}).get("units", ""),
                sigma_mm=list(params.sigma_mm_zyx),
            ),
        ),
    )


def _gaussian_compute(size: TaskSize, params: Any) -> float:
    from minjiang.kernels.gaussian import separable_seconds

    return separable_seconds(size.input_bytes // max(size.itemsize, 1), size.halo)


GAUSSIAN = Operator(
    name="medicine.gaussian",
    version="1",
    inputs=(Input("image", dims=_ZYX, dtypes=_REAL),),
    outputs=_gaussian_outputs,
    pattern=Map(kernel=_K + "gaussian_block", halo=_gaussian_halo, boundary=_mode),
    params=GaussianParams,
    memory=_smoothing_memory,
    compute=_gaussian_compute,
    backends=("cpu", "gpu"),
    description="3-D Gaussian filter, sigma in mm per axis from the voxel spacing (SciPy's weights).",
)


# -- medicine.median -----------------------------------------------------------------------
class MedianParams(_Params):
    """3-D median filter with the window size in millimetres."""

    size_mm: float | list[float] = Field(
        description="Window extent in mm: one value or (z, y, x); per axis the odd voxel count closest "
        "to size_mm / spacing (ties go up)."
    )
    mode: Boundary = Field(
        default="reflect", description="Boundary mode at the array's edges (SciPy's)."
    )
    spacing: list[float] | None = _spacing_field()

    @field_validator("spacing")
    @classmethod
    def _valid_spacing(cls, v: list[float] | None) -> list[float] | None:
        return _check_spacing(v)

    @field_validator("size_mm")
    @classmethod
    def _check_size(cls, v: float | list[float]) -> float | list[float]:
        if any(not (0 < s <= 10_000) for s in per_axis(v, "size_mm")):
            raise ValueError("size_mm must lie in (0, 10000] mm")
        return v

    @property
    def size_mm_zyx(self) -> tuple[float, float, float]:
        return per_axis(self.size_mm, "size_mm")


def _median_halo(params: MedianParams, inputs: dict[str, Any]) -> dict[str, int]:
    spacing = spacing_of(
        getattr(inputs.get("image"), "attrs", {}) or {}, params.spacing, "medicine.median"
    )
    size = median_size(params.size_mm_zyx, spacing)
    if max(size) > 101:
        raise ContractError(
            f"medicine.median: the window is {size} voxels; at most 101 per axis is supported "
            "(use a smaller size_mm or medicine.gaussian)"
        )
    return {d: s // 2 for d, s in zip(_ZYX, size, strict=True)}


def _median_outputs(params: MedianParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    info = inputs.get("image")
    attrs = getattr(info, "attrs", {}) or {}
    size = median_size(params.size_mm_zyx, spacing_of(attrs, params.spacing, "medicine.median"))
    return (
        ArrayOutput(
            "image",
            attrs=geometry_attrs(info, units=attrs.get("units", ""), window_voxels=list(size)),
        ),
    )


def _median_compute(size: TaskSize, params: Any) -> float:
    from minjiang.kernels.median import median_seconds

    return median_seconds(size.input_bytes // max(size.itemsize, 1), size.halo)


MEDIAN = Operator(
    name="medicine.median",
    version="1",
    inputs=(Input("image", dims=_ZYX, dtypes=_REAL),),
    outputs=_median_outputs,
    pattern=Map(kernel=_K + "median_block", halo=_median_halo, boundary=_mode),
    params=MedianParams,
    memory=_neighbourhood_memory,
    compute=_median_compute,
    backends=("cpu", "gpu"),
    description="3-D median filter, window in mm per axis from the voxel spacing (scipy.ndimage.median_filter).",
)


# -- medicine.threshold ---------------------------------------------------------------------
class ThresholdParams(_Params):
    """Binary mask from a fixed threshold or Otsu's threshold of the global histogram."""

    method: Literal["fixed", "otsu"] = Field(
        default="otsu",
        description="otsu (Otsu's threshold of the whole volume's histogram) or fixed ('value').",
    )
    value: float | None = Field(default=None, description="The threshold, for method='fixed'.")
    bins: int = Field(default=256, ge=2, le=1 << 20, description="Histogram bins for Otsu.")
    range: tuple[float, float] | None = Field(
        default=None,
        description="Histogram range for Otsu; default: the image's finite min and max.",
    )
    direction: Literal["above", "below"] = Field(
        default="above",
        description="Foreground: values > threshold ('above') or <= threshold ('below').",
    )

    @model_validator(mode="after")
    def _check(self) -> ThresholdParams:
        if self.method == "fixed" and self.value is None:
            raise ValueError("method='fixed' needs a 'value'")
        if self.method == "otsu" and self.value is not None:
            raise ValueError("'value' is for method='fixed'; Otsu computes the threshold")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError("range must be (min, max) with min < max")
        return self


class _RangeParams(_Params):
    pass


class _OtsuParams(_Params):
    bins: int = 256
    range: tuple[float, float] | None = None


class _ApplyParams(_Params):
    value: float | None = None
    direction: Literal["above", "below"] = "above"


def _mask_outputs(params: Any, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    return (
        ArrayOutput(
            "mask",
            dtype="uint8",
            attrs=geometry_attrs(inputs.get("image"), units="", long_name="mask"),
        ),
    )


_VALUE_RANGE = Operator(
    name="medicine.value_range",
    version="1",
    inputs=(Input("image", dtypes=_REAL),),
    outputs=(TableOutput("range", {"min": "float64", "max": "float64", "count": "int64"}),),
    pattern=Aggregate(
        partial=_K + "range_partial", combine=_K + "range_combine", finalize=_K + "range_finalize"
    ),
    params=_RangeParams,
    memory=_scan_memory,
    backends=("cpu", "gpu"),
    description="Finite minimum, maximum and count of an image (the histogram range for Otsu).",
)
_OTSU = Operator(
    name="medicine.otsu",
    version="1",
    inputs=(Input("image", dtypes=_REAL), Input("range", kind="table", optional=True)),
    outputs=(
        TableOutput(
            "threshold",
            {
                "threshold": "float64",
                "lo": "float64",
                "hi": "float64",
                "bins": "int64",
                "count": "int64",
            },
        ),
    ),
    pattern=Aggregate(
        partial=_K + "otsu_partial", combine=_K + "otsu_combine", finalize=_K + "otsu_finalize"
    ),
    params=_OtsuParams,
    memory=_scan_memory,
    backends=("cpu", "gpu"),
    description="Otsu's threshold of the global histogram (partial histograms per block, summed).",
)
_APPLY = Operator(
    name="medicine.threshold_apply",
    version="1",
    inputs=(Input("image", dtypes=_REAL), Input("threshold", kind="table", optional=True)),
    outputs=_mask_outputs,
    pattern=Map(kernel=_K + "threshold_block"),
    params=_ApplyParams,
    memory=_mask_memory,
    backends=("cpu", "gpu"),
    description="Mask of the voxels beyond a threshold (given, or from a threshold table).",
)


def _threshold_expand(params: ThresholdParams, inputs: dict[str, Any]) -> list[SubStep]:
    if params.method == "fixed":
        return [
            SubStep(
                "apply",
                _APPLY,
                {"image": "image"},
                {"value": params.value, "direction": params.direction},
            )
        ]
    steps = []
    otsu_inputs = {"image": "image"}
    if params.range is None:
        steps.append(SubStep("range", _VALUE_RANGE, {"image": "image"}))
        otsu_inputs["range"] = "range"
    otsu_params: dict[str, Any] = {"bins": params.bins}
    if params.range is not None:
        otsu_params["range"] = list(params.range)
    steps.append(SubStep("otsu", _OTSU, otsu_inputs, otsu_params))
    steps.append(
        SubStep(
            "apply",
            _APPLY,
            {"image": "image", "threshold": "otsu"},
            {"direction": params.direction},
        )
    )
    return steps


THRESHOLD = Operator(
    name="medicine.threshold",
    version="1",
    inputs=(Input("image", dtypes=_REAL),),
    outputs=_mask_outputs,
    pattern=Composite(expand=_threshold_expand),
    params=ThresholdParams,
    backends=("cpu", "gpu"),
    description="Binary mask by a fixed threshold or Otsu's (global histogram reduction, skimage-compatible).",
)


# -- medicine.label -----------------------------------------------------------------------------
class LabelParams(_Params):
    """Connected components of a mask."""

    connectivity: Literal[6, 18, 26] = Field(
        description="Neighbours that connect: 6 (faces), 18 (faces and edges) or 26 (and corners)."
    )


def _label_memory(size: TaskSize, params: Any) -> int:
    # the mask, the labels, a foreground copy (for a mask of more than one byte per
    # cell), and per run of foreground along x its start, end, union-find parent and
    # label (at most one run per two cells), each of the labels' item size
    cells = _cells(size)
    label_itemsize = size.output_bytes // max(cells, 1)
    return size.input_bytes + size.output_bytes + (1 + 2 * label_itemsize) * cells


def _equivalences_memory(size: TaskSize, params: Any) -> int:
    # the labels with their one-voxel halo, and the face pairs gathered from them
    return 2 * size.input_bytes + 2 * size.output_bytes


def _relabel_memory(size: TaskSize, params: Any) -> int:
    # the provisional labels and the final labels (the table is looked up per run)
    return size.input_bytes + size.output_bytes


def _label_dtype(info: Any) -> str:
    cells = 1
    for n in getattr(info, "shape", ()) or ():
        cells *= int(n)
    return "int32" if cells < (1 << 31) else "int64"  # labels never exceed the cell count


def _labels_outputs(params: Any, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    # provisional labels are 1 + a global C-order index: int32 while that fits, which
    # halves what the equivalences and relabel steps read
    info = inputs.get("mask") or inputs.get("labels")
    return (
        ArrayOutput(
            "labels",
            dtype=_label_dtype(info),
            attrs=geometry_attrs(info, units="", long_name="provisional labels"),
        ),
    )


def _final_labels_outputs(params: Any, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    info = inputs.get("labels") or inputs.get("mask")
    return (
        ArrayOutput(
            "labels",
            dtype=_label_dtype(info),  # never more components than cells
            fill_value=0,
            attrs=geometry_attrs(info, units="", long_name="labels"),
        ),
    )


_LABEL_BLOCKS = Operator(
    name="medicine.label_blocks",
    version="2",
    inputs=(Input("mask", dims=_ZYX, dtypes=_REAL),),
    outputs=_labels_outputs,
    pattern=Map(kernel=_K + "label_blocks"),
    params=LabelParams,
    memory=_label_memory,
    description="Connected components within each block; label = 1 + global index of the first voxel.",
)
_LABEL_VOLUME = Operator(
    name="medicine.label_volume",
    version="1",
    inputs=(Input("mask", dims=_ZYX, dtypes=_REAL),),
    outputs=_final_labels_outputs,
    pattern=FullAxis(dims=_ZYX, kernel=_K + "label_volume"),
    params=LabelParams,
    memory=_label_memory,
    description="Connected components of the whole volume in one task; labels 1..n in C order.",
)
_LABEL_EQUIV = Operator(
    name="medicine.label_equivalences",
    version="1",
    inputs=(Input("labels", dims=_ZYX, dtypes=("i", "u")),),
    outputs=(TableOutput("equivalences", {"old": "int64", "new": "int64"}),),
    pattern=Aggregate(
        partial=_K + "equivalences_partial",
        combine=_K + "equivalences_combine",
        finalize=_K + "equivalences_finalize",
        halo={"z": 1, "y": 1, "x": 1},
        boundary="constant",
    ),
    params=LabelParams,
    memory=_equivalences_memory,
    description="Label pairs touching across block faces (edges, corners), joined by union-find.",
)
_LABEL_RELABEL = Operator(
    name="medicine.label_relabel",
    version="1",
    inputs=(Input("labels", dims=_ZYX, dtypes=("i", "u")), Input("equivalences", kind="table")),
    outputs=_final_labels_outputs,
    pattern=Map(kernel=_K + "relabel_block"),
    params=_Params,
    memory=_relabel_memory,
    description="Maps provisional labels to consecutive global labels.",
)


def _label_expand(
    params: LabelParams, inputs: dict[str, Any], plan: ExpandContext
) -> list[SubStep]:
    # One task over the whole volume when it fits the budget: the kernel numbers the
    # components 1..n in C order itself, so there are no provisional labels to write,
    # read back and relabel (on one medium volume this is the faster path; see
    # docs/benchmarks.md). Otherwise blocks, face equivalences and a relabel.
    c = {"connectivity": params.connectivity}
    if plan.fits(_LABEL_VOLUME, {"mask": "mask"}, c):
        return [SubStep("volume", _LABEL_VOLUME, {"mask": "mask"}, c)]
    return [
        SubStep("local", _LABEL_BLOCKS, {"mask": "mask"}, c),
        SubStep("equivalences", _LABEL_EQUIV, {"labels": "local"}, c),
        SubStep("relabel", _LABEL_RELABEL, {"labels": "local", "equivalences": "equivalences"}),
    ]


LABEL = Operator(
    name="medicine.label",
    version="1",
    inputs=(Input("mask", dims=_ZYX, dtypes=_REAL),),
    outputs=_final_labels_outputs,
    pattern=Composite(expand=_label_expand),
    params=LabelParams,
    description=(
        "Connected components: the whole volume in one task where it fits the memory budget, "
        "else local labels, union-find over block faces, relabel."
    ),
)


# -- medicine.volumetrics ------------------------------------------------------------------------
class VolumetricsParams(_Params):
    """Per-label volume, centroid, bounding box and intensity statistics."""

    spacing: list[float] | None = _spacing_field()

    @field_validator("spacing")
    @classmethod
    def _valid_spacing(cls, v: list[float] | None) -> list[float] | None:
        return _check_spacing(v)


_VOLUME_COLUMNS = {
    "label": "int64",
    "voxel_count": "int64",
    "volume_ml": "float64",
    "centroid_z": "float64",
    "centroid_y": "float64",
    "centroid_x": "float64",
    "centroid_x_mm": "float64",
    "centroid_y_mm": "float64",
    "centroid_z_mm": "float64",
    "bbox_z0": "int64",
    "bbox_y0": "int64",
    "bbox_x0": "int64",
    "bbox_z1": "int64",
    "bbox_y1": "int64",
    "bbox_x1": "int64",
    "mean": "float64",
    "min": "float64",
    "max": "float64",
}


def _volumetrics_outputs(
    params: VolumetricsParams, inputs: dict[str, Any]
) -> tuple[TableOutput, ...]:
    attrs = dict(getattr(inputs.get("image"), "attrs", None) or {})
    if "spacing" not in attrs:
        attrs = dict(getattr(inputs.get("labels"), "attrs", None) or {})
    spacing_of(attrs, params.spacing, "medicine.volumetrics", "image")  # fail at plan time
    return (TableOutput("volumes", _VOLUME_COLUMNS),)


VOLUMETRICS = Operator(
    name="medicine.volumetrics",
    version="1",
    inputs=(
        Input("labels", dims=_ZYX, dtypes=("i", "u")),
        Input("image", dims=_ZYX, dtypes=_REAL, optional=True),
    ),
    outputs=_volumetrics_outputs,
    pattern=Aggregate(
        partial=_K + "volumetrics_partial",
        combine=_K + "volumetrics_combine",
        finalize=_K + "volumetrics_finalize",
    ),
    params=VolumetricsParams,
    memory=_scan_memory,
    description="Per label: voxel count, volume (mL), world centroid (LPS mm), bounding box, mean/min/max intensity.",
)

OPERATORS = (HU_WINDOW, GAUSSIAN, MEDIAN, THRESHOLD, LABEL, VOLUMETRICS)
