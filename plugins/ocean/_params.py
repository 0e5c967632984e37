"""Parameter models of the ocean operators (pydantic, strict: unknown keys fail).

Names follow the Hobday et al. (2016) reference code in snake case
(``climatologyPeriod`` → ``climatology_period``, ``pctile`` → ``percentile``, ...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AnomalyParams",
    "Box",
    "ClimatologyParams",
    "EOFParams",
    "MHWParams",
    "RegionalMeanParams",
    "RunningMeanParams",
]

# NaN and infinities are data, never parameters: refuse them at validation
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _check_years(v: tuple[int, int] | None, what: str) -> tuple[int, int] | None:
    if v is not None and not (1 <= v[0] <= v[1] <= 9999):
        raise ValueError(f"{what} must be (first, last) years with 1 <= first <= last <= 9999")
    return v


class ClimatologyParams(BaseModel):
    """``ocean.climatology``."""

    model_config = _STRICT

    frequency: Literal["daily", "monthly"] = Field(
        default="daily", description="'daily': 366 days of year; 'monthly': 12 calendar months."
    )
    climatology_period: tuple[int, int] | None = Field(
        default=None, description="Base period, inclusive years (first, last); default: all years."
    )
    window_half_width: int = Field(
        default=5, ge=0, le=60, description="Days pooled each side (daily)."
    )
    percentile: float = Field(
        default=90.0, gt=0, lt=100, description="Threshold percentile (10 for cold spells)."
    )
    smooth_percentile: bool = Field(
        default=True, description="31-day periodic running mean of seas and thresh."
    )
    smooth_percentile_width: int = Field(
        default=31, ge=1, le=181, description="Odd width (days) of the smoothing."
    )
    max_pad_length: int = Field(
        default=0, ge=0, le=3660, description="Interpolate gaps of at most this many days first."
    )
    convention: Literal["marineHeatWaves", "heatwaveR"] = Field(
        default="marineHeatWaves",
        description="Window and 29 February handling of the marineHeatWaves (Oliver) or heatwaveR code.",
    )

    @field_validator("smooth_percentile_width")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"smooth_percentile_width must be odd (a centred window), got {v}")
        return v

    @field_validator("climatology_period")
    @classmethod
    def _period(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        return _check_years(v, "climatology_period")


class AnomalyParams(BaseModel):
    """``ocean.anomaly``."""

    model_config = _STRICT

    reference: Literal["seas", "thresh"] = Field(
        default="seas", description="Subtract the climatology (seas) or the threshold (thresh)."
    )


class MHWParams(BaseModel):
    """``ocean.marine_heatwaves``."""

    model_config = _STRICT

    min_duration: int = Field(default=5, ge=1, le=36600, description="Shortest event (days).")
    join_across_gaps: bool = Field(default=True, description="Join events separated by short gaps.")
    max_gap: int = Field(default=2, ge=0, le=36600, description="Longest gap (days) joined.")
    max_pad_length: int = Field(
        default=0, ge=0, le=3660, description="Interpolate gaps of at most this many days first."
    )
    cold_spells: bool = Field(
        default=False, description="Detect cold spells (use a 10th-percentile threshold)."
    )
    years: tuple[int, int] | None = Field(
        default=None,
        description="Years of the gridded yearly summaries; default: the input's time coverage.",
    )

    @field_validator("years")
    @classmethod
    def _years(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        return _check_years(v, "years")


class Box(BaseModel):
    """A latitude-longitude box (degrees; longitudes in -180..360, may cross the dateline)."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    lat_min: float = Field(ge=-90, le=90)
    lat_max: float = Field(ge=-90, le=90)
    lon_min: float = Field(ge=-180, le=360)
    lon_max: float = Field(ge=-180, le=360)

    @model_validator(mode="after")
    def _order(self) -> Box:
        if self.lat_min > self.lat_max:
            raise ValueError(
                f"box {self.name!r}: lat_min {self.lat_min} is above lat_max {self.lat_max}"
            )
        return self


#: Named regions (NOAA CPC definitions of the Niño boxes).
NAMED_REGIONS: dict[str, Box] = {
    "global": Box(name="global", lat_min=-90, lat_max=90, lon_min=0, lon_max=360),
    "nino34": Box(name="nino34", lat_min=-5, lat_max=5, lon_min=-170, lon_max=-120),
    "nino3": Box(name="nino3", lat_min=-5, lat_max=5, lon_min=-150, lon_max=-90),
    "nino4": Box(name="nino4", lat_min=-5, lat_max=5, lon_min=160, lon_max=-150),
    "nino12": Box(name="nino12", lat_min=-10, lat_max=0, lon_min=-90, lon_max=-80),
}


class RegionalMeanParams(BaseModel):
    """``ocean.regional_mean``."""

    model_config = _STRICT

    regions: list[str | Box] = Field(
        default_factory=lambda: list[str | Box](["global"]),
        min_length=1,
        max_length=64,
        description=f"Named regions {sorted(NAMED_REGIONS)} or boxes {{name, lat_min, lat_max, lon_min, lon_max}}.",
    )
    weights: Literal["area", "cos_lat", "none"] = Field(
        default="area",
        description="'area': the cell_area input if given, else cos(lat) (exact for evenly spaced "
        "latitudes); 'cos_lat'; 'none'.",
    )

    @field_validator("regions")
    @classmethod
    def _known(cls, v: list[str | Box]) -> list[str | Box]:
        names = []
        for r in v:
            if isinstance(r, str) and r not in NAMED_REGIONS:
                raise ValueError(
                    f"unknown region {r!r}; named regions are {sorted(NAMED_REGIONS)!r} or give a box"
                )
            names.append(r if isinstance(r, str) else r.name)
        if len(set(names)) != len(names):
            raise ValueError(f"region names must be unique, got {names!r}")
        return v

    def boxes(self) -> list[Box]:
        return [NAMED_REGIONS[r] if isinstance(r, str) else r for r in self.regions]


class RunningMeanParams(BaseModel):
    """``ocean.running_mean``."""

    model_config = _STRICT

    window: int = Field(
        default=3, ge=1, le=1001, description="Odd number of time steps (3 for the ONI)."
    )

    @field_validator("window")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"window must be odd (a centred mean), got {v}")
        return v


class EOFParams(BaseModel):
    """``ocean.eof``."""

    model_config = _STRICT

    n_modes: int = Field(default=4, ge=1, le=200, description="Number of modes kept.")
    weights: Literal["none", "sqrt_cos_lat", "sqrt_area"] = Field(
        default="sqrt_cos_lat",
        description="'sqrt_cos_lat' (regular grids), 'sqrt_area' (the cell_area input; cos(lat) without "
        "it), 'none'. A 'weights' input array, when given, is used as is instead.",
    )
    center: bool = Field(default=True, description="Remove each cell's time mean first.")
