"""The Docker set-up as shipped: one vantage writes the monthly export, onto a writable
volume the image prepares for its non-root user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def monitors() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in compose()["services"].items() if k.startswith("monitor-")}


def export_dir(service: dict[str, Any]) -> str:
    return str(service["environment"].get("SCD_MONITOR_EXPORT_DIR", "<image default>"))


def test_exactly_one_vantage_runs_the_monthly_export() -> None:
    dirs = {name: export_dir(s) for name, s in monitors().items()}
    assert len(dirs) == 2
    writing = [name for name, d in dirs.items() if d.strip()]
    assert writing == ["monitor-bogota"], dirs


def test_the_export_goes_to_a_writable_volume_of_its_own() -> None:
    bogota = monitors()["monitor-bogota"]
    target = export_dir(bogota)
    mounts = [str(v).split(":") for v in bogota["volumes"]]
    covering = [m for m in mounts if target == m[1] or target.startswith(m[1].rstrip("/") + "/")]
    assert covering, f"{target} is on no volume: exports would be lost with the container"
    deepest = max(covering, key=lambda m: len(m[1]))
    assert deepest[-1] != "ro", f"{target} is on a read-only mount {deepest}"
    assert deepest[0] in compose()["volumes"]


def test_the_image_prepares_the_export_directory_for_its_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    target = export_dir(monitors()["monitor-bogota"])
    assert f"SCD_MONITOR_EXPORT_DIR={target}" in dockerfile
    assert f"chown scd:scd /data {target}" in dockerfile
