"""``dlp serve`` as the e2e tests run it: its configuration, the process, its CLI.

The configuration is the shipped ``config/dlp.toml`` (so the shipped policy rules are what
is tested) with the e2e instance's paths and ports, a private allowlist, and one extra
rule in front: mail from ``REJECT_SENDER`` is refused, to exercise the reject path.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from e2e_postfix import ROOT, PostfixPorts
from e2e_process import ServiceProcess

DLP = ROOT / ".venv" / "bin" / "dlp"

OWN_DOMAIN = "city-hall.jp"
PARTNER_DOMAIN = "exp.co.jp"
LOOKALIKE_DOMAIN = "exp.com"  # exp.co.jp with another public suffix
EXTERNAL_DOMAIN = "torihikisaki.co.jp"

SENDER = f"alice@{OWN_DOMAIN}"
REJECT_SENDER = f"reject-test@{OWN_DOMAIN}"
REJECT_RULE = "e2e-reject-sender"
REJECT_JA = "テスト用の拒否ルールにより送信できません。"
REJECT_EN = "Refused by the end-to-end test's reject rule."


def why_gateway_unusable() -> str | None:
    """None when ``dlp serve`` exists and takes the options the tests use."""
    if not DLP.exists():
        return f"{DLP} is missing: run `make test` (it builds .venv)"
    done = subprocess.run(
        [str(DLP), "serve", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        return (
            f"`dlp serve --help` failed ({done.returncode}): {(done.stderr or done.stdout)[-300:]}"
        )
    missing = [o for o in ("--config", "--listen", "--next-hop") if o not in done.stdout]
    if missing:
        return f"`dlp serve` has no {', '.join(missing)} option yet (issue 5 not landed)"
    return None


def gateway_config(
    root: Path, ports: PostfixPorts, postgresql_dsn: str = "", quarantine_key: str = ""
) -> Path:
    """Write the gateway's TOML and allowlist under ``root``; return the TOML's path.

    With ``postgresql_dsn`` the send log (and the hold queue) is that PostgreSQL database,
    shared by several gateways, which then need the same ``quarantine_key``; otherwise a
    private SQLite file and hold-queue directory.
    """
    var = root / "gw-var"
    var.mkdir(exist_ok=True)
    allowlist = root / "allowed_domains.txt"
    allowlist.write_text(f"[own]\n{OWN_DOMAIN}\n\n[partner]\n{PARTNER_DOMAIN}\n", encoding="utf-8")
    cfg: dict[str, Any] = tomllib.loads((ROOT / "config" / "dlp.toml").read_text(encoding="utf-8"))
    cfg["paths"]["var_dir"] = str(var)
    smtp = cfg["smtp"]
    smtp["listen"] = f"127.0.0.1:{ports.gateway}"
    smtp["next_hop"] = f"127.0.0.1:{ports.reinject}"
    smtp["hostname"] = "dlp-gw.dlp-e2e.test"
    # processes and workers stay at the shipped "0 = one per core": the tested set-up is the
    # default one (several serving processes sharing the port, one SQLite send log).
    smtp["metrics_listen"] = ""
    smtp["log_level"] = "info"
    cfg["domains"]["allowlist"] = str(allowlist)
    cfg["domains"]["lookalike_action"] = "reject"
    cfg["sendlog"]["backend"] = "postgresql" if postgresql_dsn else "sqlite"
    cfg["sendlog"]["sqlite_path"] = str(var / "sendlog.db")
    cfg["sendlog"]["postgresql_dsn"] = postgresql_dsn
    cfg["quarantine"]["dir"] = str(var / "quarantine")
    cfg["quarantine"]["encryption_key"] = quarantine_key
    reject = {
        "name": REJECT_RULE,
        "sender": [REJECT_SENDER],
        "action": "reject",
        "reason_ja": REJECT_JA,
        "reason_en": REJECT_EN,
    }
    cfg["policy"]["rules"] = [reject, *cfg["policy"].get("rules", [])]
    path = root / "dlp-e2e.toml"
    path.write_text(dump_toml(cfg), encoding="utf-8")
    return path


def serve_argv(config: Path, ports: PostfixPorts) -> list[str]:
    return [
        str(DLP),
        "serve",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{ports.gateway}",
        "--next-hop",
        f"127.0.0.1:{ports.reinject}",
    ]


def dlp_json(config: Path, *args: str) -> list[dict[str, Any]]:
    """Run ``dlp ARGS --json --config CONFIG``; one dict per output line (JSON Lines)."""
    done = subprocess.run(
        [str(DLP), *args, "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"dlp {' '.join(args)} failed ({done.returncode}): {done.stderr}"
    text = done.stdout.strip()
    if not text:
        return []
    if text.startswith("["):
        value = json.loads(text)
        assert isinstance(value, list)
        return value
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Gateway:
    """``dlp serve`` between Postfix's content filter and its re-injection port."""

    def __init__(
        self, root: Path, ports: PostfixPorts, postgresql_dsn: str = "", quarantine_key: str = ""
    ) -> None:
        self.config = gateway_config(root, ports, postgresql_dsn, quarantine_key)
        self.process = ServiceProcess(
            serve_argv(self.config, ports), ports.gateway, root / "gateway.log", cwd=root
        )

    def log(self) -> str:
        return self.process.log()

    def log_text(self) -> str:
        try:
            return self.process.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def sendlog(self, *filters: str) -> list[dict[str, Any]]:
        return dlp_json(self.config, "log", "list", "--limit", "500", *filters)

    def sendlog_for(self, audit_key: str) -> list[dict[str, Any]]:
        """Every entry under this audit key (message, outcome, release …)."""
        return [e for e in self.sendlog() if e.get("audit_key") == audit_key]

    def messages_for(self, audit_key: str) -> list[dict[str, Any]]:
        """The ``message`` entries (one per scanned message) under this audit key."""
        return [e for e in self.sendlog_for(audit_key) if e.get("event") == "message"]

    def quarantine(self) -> list[dict[str, Any]]:
        return dlp_json(self.config, "quarantine", "list")


# ---------------------------------------------------------------------------
# A TOML writer for the subset dlp.toml uses (no third-party writer is installed).


def dump_toml(cfg: dict[str, Any]) -> str:
    out: list[str] = []
    for section, table in cfg.items():
        scalars = {k: v for k, v in table.items() if not _is_table_array(v)}
        out.append(f"[{section}]")
        out.extend(f"{k} = {_value(v)}" for k, v in scalars.items())
        out.append("")
        for key, value in table.items():
            if _is_table_array(value):
                for item in value:
                    out.append(f"[[{section}.{key}]]")
                    out.extend(f"{k} = {_value(v)}" for k, v in item.items())
                    out.append("")
    return "\n".join(out)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
