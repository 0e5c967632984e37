"""Named pipelines of the medicine plugin."""

from __future__ import annotations

from minjiang.core import Pipeline

__all__ = ["lesion_volumetry"]


def lesion_volumetry() -> Pipeline:
    """``medicine.lesion_volumetry``: DICOM series -> smoothed HU -> Otsu mask -> lesions -> volumes.

    Input ``images``: DICOM files or folders (one series). Steps: ``ingest``
    (de-identified, values in HU, so no separate windowing step is needed),
    ``smooth`` (Gaussian, sigma 1 mm), ``mask`` (Otsu's threshold of the smoothed
    image's soft-tissue range, 0 to 400 HU, so it separates enhancing lesions from
    parenchyma rather than tissue from air), ``lesions`` (26-connected components) and ``volumes`` (per-lesion table);
    the report is a PNG of three orthogonal slices with the lesion overlay.
    """
    return Pipeline.model_validate(
        {
            "name": "medicine.lesion_volumetry",
            "version": "1",
            "description": "Lesion volumetry from a CT series: Gaussian smoothing, Otsu mask, "
            "26-connected components, per-lesion volume, centroid and HU statistics.",
            "inputs": ["images"],
            "steps": [
                {"id": "ingest", "reader": "medicine.dicom", "paths": "$images"},
                {
                    "id": "smooth",
                    "operator": "medicine.gaussian",
                    "inputs": {"image": "ingest"},
                    "params": {"sigma_mm": 1.0},
                },
                {
                    "id": "mask",
                    "operator": "medicine.threshold",
                    "inputs": {"image": "smooth"},
                    "params": {"method": "otsu", "range": [0.0, 400.0]},
                },
                {
                    "id": "lesions",
                    "operator": "medicine.label",
                    "inputs": {"mask": "mask"},
                    "params": {"connectivity": 26},
                },
                {
                    "id": "volumes",
                    "operator": "medicine.volumetrics",
                    "inputs": {"labels": "lesions", "image": "ingest"},
                },
            ],
            "report": "medicine.lesion_quicklook",
        }
    )
