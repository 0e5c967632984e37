"""Named pipelines of the forestry plugin."""

from __future__ import annotations

from minjiang.core import Pipeline

__all__ = ["burn_severity"]


def burn_severity() -> Pipeline:
    """``forestry.burn_severity``: pre/post NIR and SWIR2 GeoTIFFs -> NBR -> dNBR and classes.

    Inputs (one single-band GeoTIFF each, all on one grid, reflectance or scaled
    integers): ``pre_nir``, ``pre_swir2``, ``post_nir``, ``post_swir2``. Steps: four
    ``forestry.raster`` ingests, ``nbr_pre`` and ``nbr_post`` (``forestry.spectral_index``
    NBR, ``(N - S2) / (N + S2)``), ``severity`` (``forestry.dnbr``: dNBR, RdNBR, RBR and
    the USGS classes). The report is a PNG of dNBR and the severity classes.
    """
    steps: list[dict[str, object]] = []
    for when in ("pre", "post"):
        for band in ("nir", "swir2"):
            steps.append(
                {"id": f"{when}_{band}", "reader": "forestry.raster", "paths": f"${when}_{band}"}
            )
        steps.append(
            {
                "id": f"nbr_{when}",
                "operator": "forestry.spectral_index",
                "inputs": {"N": f"{when}_nir", "S2": f"{when}_swir2"},
                "params": {"index": "NBR", "output": "nbr"},
            }
        )
    steps.append(
        {
            "id": "severity",
            "operator": "forestry.dnbr",
            "inputs": {"pre": "nbr_pre", "post": "nbr_post"},
        }
    )
    return Pipeline.model_validate(
        {
            "name": "forestry.burn_severity",
            "version": "1",
            "description": "Burn severity from pre- and post-fire NIR/SWIR2: NBR, dNBR, RdNBR, "
            "RBR and the USGS (Key & Benson 2006) classes.",
            "inputs": ["pre_nir", "pre_swir2", "post_nir", "post_swir2"],
            "steps": steps,
            "report": "forestry.severity_quicklook",
        }
    )
