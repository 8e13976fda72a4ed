"""What a mail administrator is told when `dlp` cannot do what was asked: one line
naming the option, key, file or next hop at fault, and the documented exit status
(docs/gateway.md: 0 done, 1 not held or refused by the next hop, 2 configuration or
storage problem) - never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from gwtools import Sink, write_config
from sendlog_support import QUARANTINE_KEY
from support import free_port

from dlp.cli import main
from dlp.config import load_file
from dlp.holdqueue.store import open_quarantine
from dlp.model import Action, ScanReport, Verdict

pytestmark = pytest.mark.timeout(60)

DLP = str(Path(sys.executable).with_name("dlp"))
SENDER = "sender@example.lg.jp"
EXTERNAL = "someone@kaisha-abc.jp"
RAW = (
    f"From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: held for the CLI\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
).encode()
SUBCOMMANDS = [
    ["quarantine", "list"],
    ["quarantine", "show", "0123abcd"],
    ["quarantine", "release", "0123abcd"],
    ["quarantine", "delete", "0123abcd"],
]


def dlp(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line(result: Result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def hold_one(config: Path) -> str:
    """A committed held message, as the gateway leaves it."""
    queue = open_quarantine(load_file(config))
    held = queue.hold(
        RAW,
        audit_key="dlp-clierrorstestkey",
        sender=SENDER,
        recipients=[EXTERNAL],
        mail_options=[],
        verdict=Verdict(Action.HOLD, "mynumber-external"),
        report=ScanReport(source="test"),
    )
    queue.commit(held.id)
    return held.id


# -- addresses given on the command line -------------------------------------------


def test_serve_names_the_option_and_the_value_of_a_bad_address(tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, next_hop_port=free_port()))
    result = dlp("serve", "--config", cfg, "--listen", "127.0.0.1:70000")
    assert result.exit_code == 2
    assert one_line(result) == (
        'dlp: --listen "127.0.0.1:70000": the port must be 1-65535 '
        "(expected HOST:PORT, e.g. 127.0.0.1:10025)"
    )
    result = dlp("serve", "--config", cfg, "--next-hop", "localhost:smtp")
    assert result.exit_code == 2
    assert one_line(result).startswith('dlp: --next-hop "localhost:smtp": the port must be a')


def test_serve_refuses_a_next_hop_that_is_its_own_listen_address(tmp_path: Path) -> None:
    """A subprocess with a deadline: a gateway that started anyway would never return."""
    port = free_port()
    cfg = str(write_config(tmp_path, next_hop_port=free_port(), listen_port=port))
    out = subprocess.run(
        [DLP, "serve", "--config", cfg, "--next-hop", f"localhost:{port}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f'dlp: [smtp] listen = "127.0.0.1:{port}" and --next-hop "localhost:{port}" are the same'
    )
    assert "loop" in lines[0]


def test_check_says_whether_serve_would_start(tmp_path: Path) -> None:
    """`dlp check` before a restart (a review of 3 Dec: there was no way to test an
    edited dlp.toml short of restarting the gateway)."""
    cfg = write_config(tmp_path, next_hop_port=free_port())
    good = dlp("check", "--config", str(cfg))
    assert good.exit_code == 0, good.output
    assert "ok: `dlp serve` would start" in good.output and "1 own, 2 partner" in good.output
    allowlist = tmp_path / "config" / "allowed_domains.txt"
    allowlist.write_text("[own]\nexample.lg.jp\n[partner]\nfoo.co.jp bogus\n", encoding="utf-8")
    bad = dlp("check", "--config", str(cfg))
    assert bad.exit_code == 2 and f"{allowlist}:4: unknown tag 'bogus'" in bad.output
    allowlist.write_text("[own]\nexample.lg.jp\n", encoding="utf-8")
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    queue = write_config(
        tmp_path / "q", next_hop_port=free_port(), sections={"quarantine": {"dir": f"{blocker}/q"}}
    )
    no_queue = dlp("check", "--config", str(queue))
    assert no_queue.exit_code == 2 and "is a file, not a directory" in no_queue.output, no_queue.output
    cfg.write_text(cfg.read_text(encoding="utf-8") + "\n[smtp]\nbogus = 1\n", encoding="utf-8")
    broken = dlp("check", "--config", str(cfg))
    assert broken.exit_code == 2 and "smtp" in broken.output


def test_console_names_the_option_and_the_value_of_a_bad_address(tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, next_hop_port=free_port()))
    result = dlp("console", "--config", cfg, "--listen", "127.0.0.1")
    assert result.exit_code == 2
    assert one_line(result) == (
        'dlp: --listen "127.0.0.1": no port (expected HOST:PORT, e.g. 127.0.0.1:10025)'
    )


# -- storage problems: exit 2, the path named ----------------------------------------


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=lambda a: a[1])
def test_quarantine_with_var_a_plain_file_says_so_and_exits_2(
    tmp_path: Path, args: list[str]
) -> None:
    cfg = write_config(tmp_path, next_hop_port=free_port())
    (tmp_path / "var").write_text("not a directory\n")
    result = dlp(*args, "--config", str(cfg))
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith(f"dlp: {tmp_path / 'var' / 'quarantine.key'}: cannot ")
    assert f"({tmp_path / 'var'} is a file, not a directory)" in line


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=lambda a: a[1])
def test_quarantine_with_its_directory_a_plain_file_says_so_and_exits_2(
    tmp_path: Path, args: list[str]
) -> None:
    """With the key in the configuration, the queue directory itself is read: a plain
    file there is a broken queue, not an empty one."""
    cfg = write_config(
        tmp_path,
        next_hop_port=free_port(),
        sections={"quarantine": {"encryption_key": QUARANTINE_KEY}},
    )
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "quarantine").write_text("not a directory\n")
    result = dlp(*args, "--config", str(cfg))
    assert result.exit_code == 2
    assert one_line(result).startswith(f"dlp: {tmp_path / 'var' / 'quarantine'}: cannot ")


def test_console_accounts_with_var_a_plain_file_say_so_and_exit_2(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, next_hop_port=free_port())
    (tmp_path / "var").write_text("not a directory\n")
    result = dlp("console", "user", "list", "--config", str(cfg))
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith(f"dlp: {tmp_path / 'var' / 'console-users.db'}: cannot open")
    assert f"({tmp_path / 'var'} is a file, not a directory)" in line


def test_a_corrupt_key_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    """The key was generated into var/quarantine.key ([quarantine] encryption_key is
    empty): the message is about that file, not the setting."""
    cfg = write_config(tmp_path, next_hop_port=free_port())
    (tmp_path / "var").mkdir()
    key_file = tmp_path / "var" / "quarantine.key"
    key_file.write_text("notakey\n")
    result = dlp("quarantine", "list", "--config", str(cfg))
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith(f"dlp: {key_file}: not a valid hold-queue key")
    assert "backup" in line and "encryption_key" not in line


# -- release: the next hop named ------------------------------------------------------


def test_release_to_an_unreachable_next_hop_names_it_and_keeps_the_message(
    tmp_path: Path,
) -> None:
    dead = free_port()
    cfg = write_config(tmp_path, next_hop_port=dead)
    held_id = hold_one(cfg)
    result = dlp("quarantine", "release", held_id, "--config", str(cfg))
    assert result.exit_code == 1
    line = one_line(result)
    assert line == (
        f"dlp: not released: the next hop 127.0.0.1:{dead} could not be reached: "
        "Connection refused; the message stays held"
    )
    assert held_id in dlp("quarantine", "list", "--config", str(cfg)).output


def test_release_answered_with_a_refusal_says_what_the_next_hop_answered(
    tmp_path: Path, sink: Sink
) -> None:
    cfg = write_config(tmp_path, next_hop_port=sink.port)
    held_id = hold_one(cfg)
    sink.behaviour.data_reply = "452 4.3.1 insufficient system storage"
    try:
        result = dlp("quarantine", "release", held_id, "--config", str(cfg))
    finally:
        sink.behaviour.__init__()  # type: ignore[misc]
    assert result.exit_code == 1
    assert one_line(result) == (
        f"dlp: not released: the next hop 127.0.0.1:{sink.port} did not accept the message: "
        "452 4.3.1 insufficient system storage; the message stays held"
    )


def test_release_next_hop_option_delivers_elsewhere(tmp_path: Path, sink: Sink) -> None:
    """As `dlp serve --next-hop`: the configured next hop is down, the message goes to
    the one given, and a bad value is refused naming the option."""
    sink.messages.clear()
    cfg = write_config(tmp_path, next_hop_port=free_port())
    held_id = hold_one(cfg)
    bad = dlp("quarantine", "release", held_id, "--config", str(cfg), "--next-hop", "x")
    assert bad.exit_code == 2 and one_line(bad).startswith('dlp: --next-hop "x": no port')
    result = dlp(
        "quarantine", "release", held_id, "--config", str(cfg),
        "--next-hop", f"127.0.0.1:{sink.port}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].content == RAW and got[0].rcpt_tos == [EXTERNAL]


@pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
    reason="only root can be the wrong user here",
)
def test_root_is_told_to_run_as_the_gateways_user_where_var_is_its(tmp_path: Path) -> None:
    """Run as root in a var/ of the gateway's user (User=dlp), a command would
    leave a send log or key there that the gateway cannot open: it is refused,
    saying whose var/ it is; commands that keep no state still run."""
    import os

    cfg = str(write_config(tmp_path, next_hop_port=free_port()))
    var = load_file(Path(cfg)).var_dir
    var.mkdir(parents=True, exist_ok=True)
    os.chown(var, 65534, 65534)  # nobody
    for args in (["log", "list"], ["quarantine", "list"], ["console", "user", "list"]):
        result = dlp(*args, "--config", cfg)
        assert result.exit_code == 2, args
        assert "sudo -u nobody" in one_line(result), args
    assert list(var.iterdir()) == []  # nothing was created
    checked = dlp("domains", "check", "--config", cfg, "gmial.com")
    assert checked.exit_code == 1 and "lookalike" in checked.output  # 1: a lookalike found


def test_serve_without_a_configuration_file_says_so(tmp_path: Path) -> None:
    """Where no configuration file is found, the built-in defaults are used: said at
    once, or the allowlist file missing from the current directory is all one sees."""
    import os

    if Path("/etc/dlp/dlp.toml").is_file():
        pytest.skip("this machine has a system configuration file")
    env = {k: v for k, v in os.environ.items() if k != "DLP_CONFIG"}
    proc = subprocess.run(
        [DLP, "serve", "--listen", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode != 0  # no allowlist here
    first = proc.stderr.splitlines()[0]
    assert first.startswith("dlp: no configuration file") and str(tmp_path) in first
    # and so does every command that reads the gateway's state (a review of 3 Dec:
    # `dlp quarantine list` in the wrong directory said "no held messages" and nothing else)
    for command in (["quarantine", "list"], ["log", "list"]):
        proc = subprocess.run(
            [DLP, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=50
        )
        assert proc.stderr.startswith("dlp: no configuration file"), (command, proc.stderr)
