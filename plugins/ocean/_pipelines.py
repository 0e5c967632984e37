"""Named pipelines of the ocean plugin."""

from __future__ import annotations

from typing import Any

__all__ = ["MHW_REPORT", "pipelines"]

#: ``ocean.mhw_report``: daily SST files -> climatology, anomaly, heatwaves, index, quicklook.
MHW_REPORT: dict[str, Any] = {
    "name": "ocean.mhw_report",
    "version": "1",
    "description": (
        "Marine heatwaves from daily SST NetCDF files: Hobday et al. (2016) climatology over all years, "
        "anomalies, events with their metrics and yearly grids, the area-weighted mean anomaly, and a "
        "quicklook PNG (MHW days of the last year, index time series)."
    ),
    "inputs": ["files"],
    "steps": [
        {"id": "ingest", "reader": "ocean.netcdf", "paths": "$files"},
        {"id": "climatology", "operator": "ocean.climatology", "inputs": {"sst": "ingest"}},
        {
            "id": "anomaly",
            "operator": "ocean.anomaly",
            "inputs": {"sst": "ingest", "seas": "climatology"},
        },
        {
            "id": "heatwaves",
            "operator": "ocean.marine_heatwaves",
            "inputs": {"sst": "ingest", "seas": "climatology", "thresh": "climatology"},
        },
        {
            "id": "index",
            "operator": "ocean.regional_mean",
            "inputs": {"sst": "anomaly"},
            "params": {"regions": ["global"]},
        },
    ],
    "report": "ocean.mhw_quicklook",
}


def pipelines() -> list[Any]:
    """The plugin's pipelines as validated :class:`minjiang.Pipeline` objects."""
    from minjiang.core import load_pipeline

    return [load_pipeline(MHW_REPORT)]
