"""The plugin's surface: hooks, names, documentation, and a light import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import minjiang.plugins.medicine as medicine

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "medicine.md"


def test_hooks_register_everything_and_it_is_documented():
    ops = [o.name for o in medicine.minjiang_register_operators()]
    readers = [r.name for r in medicine.minjiang_register_readers()]
    pipes = [p.name for p in medicine.minjiang_register_pipelines()]
    assert ops == [
        "medicine.hu_window",
        "medicine.gaussian",
        "medicine.median",
        "medicine.threshold",
        "medicine.label",
        "medicine.volumetrics",
    ]
    assert pipes == ["medicine.lesion_volumetry"]
    text = DOC.read_text()
    for name in ops + readers + pipes:
        assert f"`{name}`" in text, f"{name} is not documented in {DOC.name}"


def test_runtime_sees_the_plugin(runtime):
    assert "medicine.label" in runtime.operators
    assert "medicine.dicom" in runtime.readers
    assert "medicine.lesion_volumetry" in runtime.pipelines


def test_import_and_registration_stay_light():
    code = (
        "import sys, minjiang.plugins.medicine as m\n"
        "m.minjiang_register_operators(); m.minjiang_register_readers(); m.minjiang_register_pipelines()\n"
        "heavy = [k for k in ('numba', 'pydicom', 'nibabel', 'scipy', 'skimage', 'matplotlib', 'ray') if k in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
