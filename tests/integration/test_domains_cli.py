"""`dlp domains check` and `dlp allowlist` as an administrator runs them (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DLP = Path(sys.executable).parent / "dlp"

ALLOWLIST = """\
# our allowlist — keep this comment
[own]
exp.co.jp      # head office

[partner]
sakura-payroll.co.jp  mynumber   # 給与計算委託先
"""

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "dlp.toml").write_text(
        '[domains]\nallowlist = "config/allowed_domains.txt"\n'
        '[sendlog]\nsqlite_path = "var/sendlog.db"\n',
        encoding="utf-8",
    )
    (tmp_path / "config" / "allowed_domains.txt").write_text(ALLOWLIST, encoding="utf-8")
    (tmp_path / "var").mkdir()
    return tmp_path


def dlp(site: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    if not DLP.exists():
        pytest.skip(f"{DLP} not installed (pip install -e .)")
    return subprocess.run(
        [str(DLP), *args],
        cwd=site,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=100,
        env={"PATH": "/usr/bin:/bin", "HOME": str(site), "LANG": "C.UTF-8"},
    )


def test_check_json_from_stdin_one_object_per_line_in_order(site: Path) -> None:
    base = ["exp.com", "aaabb@exp.co.jp", "", "gmаil.com", "ＧＭＡＩＬ．ＣＯＭ", "expco.jp",
            "mail.sakura-payroll.co.jp", "google.com", "not a domain", "exp-co.jp"]  # fmt: skip
    lines = [
        f"user{i}@host{i}.example.org" if i % 7 == 0 else base[i % len(base)] for i in range(3000)
    ]
    out = dlp(site, "domains", "check", "--json", "-", stdin="\n".join(lines) + "\n")
    assert out.returncode == 1, out.stderr  # lookalikes present
    objects = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(objects) == len(lines)
    assert [o["input"] for o in objects] == lines
    for o in objects:
        assert o["verdict"] in ("trusted", "external", "lookalike")
        assert set(o) >= {"domain", "verdict", "resembles", "technique", "distance"}
    first = {o["input"]: o for o in objects}
    assert first["exp.com"]["resembles"] == "exp.co.jp"
    assert first["exp.com"]["technique"] == "suffix_swap"
    assert first["exp.com"]["distance"] == 3
    assert first["aaabb@exp.co.jp"]["verdict"] == "trusted"
    assert first["gmаil.com"]["technique"] == "homoglyph"
    assert first["ＧＭＡＩＬ．ＣＯＭ"]["domain"] == "gmail.com"
    assert first["ＧＭＡＩＬ．ＣＯＭ"]["verdict"] == "external"
    assert first["mail.sakura-payroll.co.jp"]["verdict"] == "trusted"


def test_check_text_and_exit_status(site: Path) -> None:
    ok = dlp(site, "domains", "check", "google.com", "exp.co.jp")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[1].startswith("exp.co.jp\ttrusted\t")
    bad = dlp(site, "domains", "check", "exp.ne.jp")
    assert bad.returncode == 1
    assert "exp.co.jp" in bad.stdout and "suffix_swap" in bad.stdout
    nob = dlp(site, "domains", "check", "--no-builtin", "gmai.com")
    assert nob.returncode == 0


def test_check_with_another_allowlist_and_a_broken_one(site: Path) -> None:
    other = site / "candidate.txt"
    other.write_text("[own]\nmirai-kyosai.or.jp\n", encoding="utf-8")
    out = dlp(site, "domains", "check", "--allowlist", str(other), "mirai-kyousai.or.jp", "exp.com")
    assert out.returncode == 1
    assert out.stdout.splitlines()[0].split("\t")[1] == "lookalike"
    assert out.stdout.splitlines()[1].split("\t")[1] == "external"  # exp.co.jp not in this file
    other.write_text("[own]\nmirai-kyosai.or.jp\n[partner]\nfoo.co.jp bogus\n", encoding="utf-8")
    broken = dlp(site, "domains", "check", "--allowlist", str(other), "x.com")
    assert broken.returncode == 2
    assert f"{other}:4: unknown tag 'bogus'" in broken.stderr


def test_add_refuses_a_lookalike_without_force(site: Path) -> None:
    path = site / "config" / "allowed_domains.txt"
    out = dlp(site, "allowlist", "add", "sakura-payrol.co.jp")
    assert out.returncode == 1
    assert "looks like sakura-payroll.co.jp" in out.stderr
    assert "--force" in out.stderr
    assert path.read_text(encoding="utf-8") == ALLOWLIST
    forced = dlp(site, "allowlist", "add", "--force", "sakura-payrol.co.jp")
    assert forced.returncode == 0, forced.stderr
    assert "added anyway" in forced.stderr
    assert "sakura-payrol.co.jp" in path.read_text(encoding="utf-8")


def test_a_domain_resembling_one_added_by_the_same_command_gets_the_real_reason(
    site: Path,
) -> None:
    """It was refused as "the allowlist changed meanwhile; run the command again"."""
    out = dlp(site, "allowlist", "add", "kyuyo-center.co.jp", "kyuyo-centre.co.jp")
    assert out.returncode == 1
    assert "changed meanwhile" not in out.stderr
    assert "looks like kyuyo-center.co.jp" in out.stderr, out.stderr


def test_add_list_remove_round_trip(site: Path) -> None:
    path = site / "config" / "allowed_domains.txt"
    assert dlp(site, "allowlist", "add", "--mynumber", "kyuyo-center.co.jp").returncode == 0
    assert dlp(site, "allowlist", "add", "--own", "branch.example.lg.jp").returncode == 0
    assert dlp(site, "allowlist", "add", "--external", "exp.com").returncode == 0
    text = path.read_text(encoding="utf-8")
    for comment in ("# our allowlist — keep this comment", "# head office", "# 給与計算委託先"):
        assert comment in text
    listed = json.loads(dlp(site, "allowlist", "list", "--json").stdout)
    assert listed["own"] == ["exp.co.jp", "branch.example.lg.jp"]
    assert {"domain": "kyuyo-center.co.jp", "mynumber": True} in listed["partner"]
    assert listed["external"] == ["exp.com"]
    # exp.com is now a checked external: no longer a lookalike
    assert dlp(site, "domains", "check", "exp.com").returncode == 0
    assert dlp(site, "allowlist", "remove", "exp.com", "kyuyo-center.co.jp").returncode == 0
    assert dlp(site, "domains", "check", "exp.com").returncode == 1
    missing = dlp(site, "allowlist", "remove", "nothere.co.jp")
    assert missing.returncode == 1 and "not in the allowlist" in missing.stderr
    assert "# head office" in path.read_text(encoding="utf-8")
    # removing the last own domain warns: every sender would count as outside
    one = dlp(site, "allowlist", "remove", "branch.example.lg.jp")
    assert one.returncode == 0 and "no [own] domain" not in one.stderr
    last = dlp(site, "allowlist", "remove", "exp.co.jp")
    assert last.returncode == 0 and "now lists no [own] domain" in last.stderr


def test_add_rejects_invalid_and_public_mail(site: Path) -> None:
    assert dlp(site, "allowlist", "add", "co.jp").returncode == 2
    hyphen = dlp(site, "allowlist", "add", "--force", "--", "-foo.co.jp")
    assert hyphen.returncode == 2 and "not a valid host name" in hyphen.stderr
    assert dlp(site, "allowlist", "add", "a@b.co.jp").returncode == 2
    gm = dlp(site, "allowlist", "add", "gmail.com")
    assert gm.returncode == 1 and "public mail service" in gm.stderr


def test_concurrent_adds_both_land(site: Path) -> None:
    if not DLP.exists():
        pytest.skip("dlp not installed")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(site), "LANG": "C.UTF-8"}
    wanted = [
        "alpha-kikaku.co.jp",
        "bravo-shoji.co.jp",
        "charlie-sangyo.co.jp",
        "delta-kogyo.co.jp",
    ]
    procs = [
        subprocess.Popen([str(DLP), "allowlist", "add", d], cwd=site, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for d in wanted
    ]  # fmt: skip
    for p in procs:
        p.wait(timeout=100)
    partners = json.loads(dlp(site, "allowlist", "list", "--json").stdout)["partner"]
    names = {p["domain"] for p in partners}
    assert set(wanted) <= names


def test_changes_are_recorded_in_the_send_log(site: Path) -> None:
    assert (
        dlp(site, "allowlist", "add", "--comment", "new payroll office", "kyuyo.co.jp").returncode
        == 0
    )
    from dlp.config import load_settings
    from dlp.sendlog import open_store
    from dlp.sendlog.store import LogFilter

    store = open_store(load_settings(site / "config" / "dlp.toml"))
    try:
        entries = store.query(LogFilter(event="allowlist_add"))
    finally:
        store.close()
    assert len(entries) == 1
    record = entries[0].record
    assert record.detail["domain"] == "kyuyo.co.jp"
    assert record.comment == "new payroll office"


def test_checks_are_repeated_under_the_lock(site: Path) -> None:
    """An entry that became a lookalike while `add` waited for the lock is not added."""
    import fcntl
    import os
    import time

    if not DLP.exists():
        pytest.skip("dlp not installed")
    path = site / "config" / "allowed_domains.txt"
    lock = site / "config" / ".allowed_domains.txt.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(site), "LANG": "C.UTF-8"}
    proc = subprocess.Popen(
        [str(DLP), "allowlist", "add", "hokuriku-shinkin.co.jp"],
        cwd=site, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        fd_dir = Path(f"/proc/{proc.pid}/fd")
        while time.monotonic() < deadline:  # wait until it holds the lock file open
            try:
                if any(os.readlink(f) == str(lock) for f in fd_dir.iterdir()):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            pytest.fail("dlp allowlist add never reached the lock")
        # meanwhile another administrator lists a near twin
        path.write_text(ALLOWLIST + "hokuriku-shinkn.co.jp\n", encoding="utf-8")
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "changed meanwhile" in err
    assert "hokuriku-shinkin.co.jp" not in path.read_text(encoding="utf-8")


def test_check_against_a_plain_list_of_domains(site: Path) -> None:
    """Many admins keep a bare list, one domain a line: `--allowlist` reads it as partners."""
    plain = site / "partners.txt"
    plain.write_text(
        "# our partners, exported from the old gateway\nmirai-kyosai.or.jp\n\n"
        "pref.kanagawa.jp\nsakura-payroll.co.jp   # payroll\n",
        encoding="utf-8",
    )
    domains = ["mirai-kyousai.or.jp", "pref.kanagawa.jp", "mail.sakura-payroll.co.jp",
               "prefkanagawa.jp", "google.com"]  # fmt: skip
    text = dlp(site, "domains", "check", "--allowlist", str(plain), *domains)
    assert text.returncode == 1, text.stderr
    rows = [line.split("\t") for line in text.stdout.splitlines()]
    assert [r[0] for r in rows] == domains
    assert [r[1] for r in rows] == ["lookalike", "trusted", "trusted", "lookalike", "external"]
    # the text output ends with what differs, in words
    assert rows[0][-1] == "u added (mirai-kyousai.or.jp ↔ mirai-kyosai.or.jp)"
    assert (
        rows[3][-1] == "pref.kanagawa.jp run together without its dots, under .jp (prefkanagawa.jp)"
    )
    out = dlp(site, "domains", "check", "--json", "--allowlist", str(plain), *domains)
    objects = [json.loads(x) for x in out.stdout.splitlines()]
    assert objects[0]["resembles"] == "mirai-kyosai.or.jp"
    assert objects[0]["explanation"] == "u added (mirai-kyousai.or.jp ↔ mirai-kyosai.or.jp)"
    assert objects[4]["explanation"] == ""
    # a line that is not a domain is an error an admin can act on, with its line number
    plain.write_text("mirai-kyosai.or.jp\nnot a domain\n", encoding="utf-8")
    broken = dlp(site, "domains", "check", "--allowlist", str(plain), "x.com")
    assert broken.returncode == 2
    assert f"{plain}:2:" in broken.stderr


def dlp_here(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dlp` from this source tree (the installed script may be another checkout's)."""
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", "from dlp.cli import main; main()", *args],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=100,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(site),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(root),
        },
    )


def test_freemail_in_check_and_extendable_in_the_allowlist(site: Path) -> None:
    """Issue 14: `--json` says "freemail" for every domain; the shipped list covers
    gmail.com and carrier subdomains, and [freemail] in the allowlist adds more."""
    dlp = dlp_here
    r = dlp(site, "domains", "check", "--json", "gmail.com", "biz.ezweb.ne.jp", "gmial.com",
            "kaisha-abc.jp", "mail.example-isp.ne.jp")  # fmt: skip
    got = {
        o["input"]: (o["verdict"], o["freemail"]) for o in map(json.loads, r.stdout.splitlines())
    }
    assert got == {
        "gmail.com": ("external", True),
        "biz.ezweb.ne.jp": ("external", True),
        "gmial.com": ("lookalike", False),  # a lookalike of a free-mail domain stays a lookalike
        "kaisha-abc.jp": ("external", False),
        "mail.example-isp.ne.jp": ("external", False),
    }
    added = dlp(site, "allowlist", "add", "--freemail", "example-isp.ne.jp")
    assert added.returncode == 0, added.stderr
    text = (site / "config" / "allowed_domains.txt").read_text(encoding="utf-8")
    assert "[freemail]\nexample-isp.ne.jp" in text and "keep this comment" in text
    r = dlp(site, "domains", "check", "--json", "mail.example-isp.ne.jp")
    assert json.loads(r.stdout)["freemail"] is True
    listed = dlp(site, "allowlist", "list")
    assert "freemail\texample-isp.ne.jp" in listed.stdout
    plain = dlp(site, "domains", "check", "gmail.com")
    assert plain.stdout.split("\t")[1] == "external (freemail)"
