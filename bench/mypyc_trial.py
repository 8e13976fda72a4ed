#!/usr/bin/env python3
"""What compiling the session modules with mypyc would buy: instructions per message.

    .venv/bin/python bench/mypyc_trial.py [--commit HEAD] [--dir /tmp/mypyc-trial]

mypyc (it comes with mypy, already a test dependency) compiles type-annotated
modules to C extensions.  This makes two checkouts of COMMIT under DIR: ``plain``
and ``mypyc``, the second with ``dlp/smtp/{server,datareader,client,relay,gateway}.py``
compiled in place (the extensions shadow the sources), builds the C modules of
both, and runs ``bench/gateway_callgrind.py`` on the two side by side.

One source change is needed first, made only in the compiled copy: mypyc's
dataclasses do not set fields declared ``field(default=..., init=False)``, so
``relay.NextHop`` gets a ``__post_init__`` that sets them.  Nothing here is
committed or installed; the gateway ships uncompiled (bench/RESULTS-gateway.md,
"sixth session", says why).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["server", "datareader", "client", "relay", "gateway"]


def checkout(commit: str, where: Path) -> None:
    if where.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)])
        shutil.rmtree(where, ignore_errors=True)
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), commit], check=True
    )
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=where, check=True
    )


def post_init(relay: Path) -> None:
    """``field(default=X, init=False)`` fields of NextHop set in ``__post_init__``."""
    text = relay.read_text(encoding="utf-8")
    fields = re.findall(
        r"^    (\w+): [^=\n]+ = field\((?:default=([^,]+)|default_factory=(\w+)), init=False\)$",
        text,
        re.M,
    )
    body = "".join(f"        self.{n} = {d or f + '()'}\n" for n, d, f in fields)
    anchor = '    failure: str = field(default="", init=False)\n'
    assert anchor in text and fields, "relay.NextHop changed: update this trial"
    text = text.replace(anchor, anchor + "\n    def __post_init__(self) -> None:\n" + body, 1)
    relay.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/mypyc-trial"))
    args = ap.parse_args()
    plain, compiled = args.dir / "plain", args.dir / "mypyc"
    args.dir.mkdir(parents=True, exist_ok=True)
    checkout(args.commit, plain)
    checkout(args.commit, compiled)
    post_init(compiled / "dlp" / "smtp" / "relay.py")
    mypyc = Path(sys.executable).with_name("mypyc")
    subprocess.run(
        [str(mypyc), *(f"dlp/smtp/{m}.py" for m in MODULES)],
        cwd=compiled,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gateway_callgrind.py"),
            "--gateway",
            f"plain={plain}",
            "--gateway",
            f"mypyc (5 session modules)={compiled}",
        ],
        check=True,
    )


if __name__ == "__main__":
    main()
