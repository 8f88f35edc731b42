"""Dagster's project conventions: `dg check defs` loads the code location that pyproject.toml's [tool.dg] names."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DG = Path(sys.executable).parent / "dg"


def check_defs(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = os.environ | {"DAGSTER_HOME": str(home), "REGULARS_WAREHOUSE": str(tmp_path / "w.duckdb"),
                        "REGULARS_OUTPUT": str(tmp_path / "out")} | env  # fmt: skip
    return subprocess.run([DG, "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_dg_check_defs_passes(tmp_path):
    done = check_defs(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully." in done.stdout + done.stderr


def test_dg_check_defs_fails_on_a_shop_that_does_not_load(tmp_path):
    # a deployment whose shop has an impossible setting: the definitions cannot load, and dg says why
    broken = tmp_path / "north.yaml"
    broken.write_text((ROOT / "shop.yaml").read_text().replace("history_end: 2025-12-31", "history_end: 2025-11-31"))
    done = check_defs(tmp_path, REGULARS_SHOPS=str(broken))
    assert done.returncode != 0
    assert "history_end: 2025-11-31 is an impossible date" in done.stdout + done.stderr
