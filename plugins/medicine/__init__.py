"""minjiang.plugins.medicine: medical imaging readers and operators.

Readers: ``medicine.dicom`` (DICOM series, de-identified on read per PS3.15 Annex E),
``medicine.nifti`` and ``medicine.nibabel`` (NIfTI and the other nibabel formats).
Operators: ``medicine.hu_window``, ``medicine.gaussian``, ``medicine.median``,
``medicine.threshold``, ``medicine.label``, ``medicine.volumetrics``. Pipeline:
``medicine.lesion_volumetry``, with its report ``medicine.lesion_quicklook``.
Helpers: :func:`write_ct_series` and :func:`phantom_hu`
write small synthetic CT series (examples, tests). See ``docs/plugins/medicine.md``.

This module only declares hook implementations; the readers, operators and their
kernels are imported when a runtime asks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minjiang.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from minjiang.core import Operator, Pipeline, Reader, Report

if __name__ != "minjiang.plugins.medicine":  # importable only as minjiang.plugins.medicine
    raise ImportError(
        f"'{__name__}' is minjiang.plugins.medicine: install minjiang and import it by that name"
    )

#: the minjiang plugin API versions this plugin supports (checked before it loads)
MINJIANG_API = ">=1.0,<2"
__all__ = [
    "minjiang_register_operators",
    "minjiang_register_pipelines",
    "minjiang_register_readers",
    "minjiang_register_reports",
    "phantom_hu",
    "write_ct_series",
]


def __getattr__(name: str) -> Any:  # lazy: the synthetic-series helpers need pydicom
    if name in ("phantom_hu", "write_ct_series"):
        from minjiang.plugins.medicine import _synthetic

        return getattr(_synthetic, name)
    raise AttributeError(f"module 'minjiang.plugins.medicine' has no attribute {name!r}")


@hookimpl
def minjiang_register_operators() -> list[Operator]:
    """The medicine operators."""
    from minjiang.plugins.medicine._operators import OPERATORS

    return list(OPERATORS)


@hookimpl
def minjiang_register_readers() -> list[Reader]:
    """The medicine readers (DICOM, NIfTI, other nibabel formats)."""
    from minjiang.plugins.medicine._readers import DicomReader, NibabelReader, NiftiReader

    return [DicomReader(), NiftiReader(), NibabelReader()]


@hookimpl
def minjiang_register_pipelines() -> list[Pipeline]:
    """The ``medicine.lesion_volumetry`` pipeline."""
    from minjiang.plugins.medicine._pipelines import lesion_volumetry

    return [lesion_volumetry()]


@hookimpl
def minjiang_register_reports() -> list[Report]:
    """The ``medicine.lesion_quicklook`` report (three orthogonal slices with the labels)."""
    from minjiang.plugins.medicine._report import reports

    return reports()
