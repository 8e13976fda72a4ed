"""deploy/systemd and deploy/container: the checks this machine can make without an init
system or a container engine (the Postfix files are exercised by the other e2e tests)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from e2e_postfix import DEPLOY, ROOT, parse_master

pytestmark = pytest.mark.timeout(60)

UNIT = ROOT / "deploy" / "systemd" / "dlp.service"
CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def _unit_for_checkout(tmp_path: Path) -> Path:
    """The unit with /opt/dlp pointed at this checkout, so its ExecStart exists."""
    unit = tmp_path / "dlp.service"
    unit.write_text(UNIT.read_text().replace("/opt/dlp", str(ROOT)))
    return unit


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(_unit_for_checkout(tmp_path))],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # verify prints unknown keys, misplaced sections and missing executables as warnings.
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    )


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
def test_unit_exposure_is_low(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE
    done = subprocess.run(
        [
            SYSTEMD_ANALYZE,
            "security",
            "--offline=true",
            "--threshold=20",
            str(_unit_for_checkout(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, "exposure above 2.0:\n" + done.stdout[-600:]


def test_unit_runs_the_gateway_unprivileged_with_only_var_writable() -> None:
    s = _unit_settings()
    assert s["User"] == ["dlp"] and s["ProtectSystem"] == ["strict"]
    assert s["ReadWritePaths"] == ["/opt/dlp/var"]
    assert s["Restart"] == ["on-failure"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    argv = shlex.split(s["ExecStart"][0])
    assert argv[0] == "/opt/dlp/.venv/bin/dlp" and argv[1] == "serve"
    # The command the unit starts is the console script pyproject.toml installs.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(argv[0]).name in scripts


def test_containerfile_copies_only_paths_that_exist() -> None:
    copies: list[str] = []
    for line in CONTAINERFILE.read_text().splitlines():
        words = line.split()
        if words and words[0] == "COPY":
            copies.extend(w for w in words[1:-1] if not w.startswith("--"))
    assert copies, "no COPY lines found"
    for source in copies:
        assert (ROOT / source).exists(), f"Containerfile copies {source}, which is missing"
    # The build installs with pip from pyproject.toml, which needs its readme.
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert readme in copies


def test_postfix_fragments_parse_and_never_expose_reinjection() -> None:
    for mode in ("after-queue", "before-queue"):
        # parse_master refuses "-o a = b" and "-o a=b, c": no spaces inside -o values.
        entries = parse_master((DEPLOY / mode / "master.cf").read_text())
        reinject = [e for e in entries if e.name.endswith(":10026")]
        assert len(reinject) == 1, mode
        e = reinject[0]
        # Bound to loopback, never filtered again, relays only for loopback.
        assert e.name == "127.0.0.1:10026"
        assert "content_filter=" in e.options
        assert "mynetworks=127.0.0.0/8" in e.options
        assert "smtpd_recipient_restrictions=permit_mynetworks,reject" in e.options
        # Room for every gateway process's idle connections (deploy/postfix/after-queue).
        assert e.fields[4] == "-", f"{mode}: 10026 maxproc {e.fields[4]}, expected '-' (100)"


def test_postfix_main_cf_never_reroutes_by_local_part() -> None:
    """allow_percent_hack and swap_bangpath off in both modes (issue 11; their effect on a
    real Postfix is shown in test_postfix_routing.py)."""
    for mode in ("after-queue", "before-queue"):
        settings: dict[str, str] = {}
        for line in (DEPLOY / mode / "main.cf").read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition("=")
                settings[key.strip()] = value.strip()
        assert settings["allow_percent_hack"] == "no", mode
        assert settings["swap_bangpath"] == "no", mode
