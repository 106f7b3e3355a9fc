#!/usr/bin/env python3
"""The two commands of the README, on a fresh machine with only Python 3.11.

    python3 dev.py demo    # install, load the demo consortium and 8 weeks of generated past, serve it on
                           # http://127.0.0.1:8000/
    python3 dev.py test    # install, then run the test suite (pytest arguments may follow)
    python3 dev.py faults  # the fault tests (-m fault): processes killed under load, a 5-minute soak;
                           # needs DATABASE_URL, REDIS_URL
    python3 dev.py soak    # the 30-minute soak alone, before a release; needs DATABASE_URL, REDIS_URL

Both create ./.venv from the lock file (requirements/dev.lock, hashes checked) the first time and
whenever the lock file changes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "dev.lock"
PY = VENV / "bin" / "python"
DEMO_FILE = ROOT / "deploy" / "demo-consortium.yaml"


def ensure_venv() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"Python 3.11 is required (this is {sys.version.split()[0]})")
    stamp = VENV / ".lock-sha256"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if PY.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    if not PY.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing locked dependencies (requirements/dev.lock) ...", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--require-hashes", "-r", str(LOCK)], check=True)
    stamp.write_text(digest)


def manage(*args: str) -> None:
    subprocess.run([str(PY), "manage.py", *args], cwd=ROOT, check=True)


def simulator_env(port: str) -> dict[str, str]:
    """The demo's SMS simulator (texting/simulator.py): texting on, against a stand-in for Twilio that
    the demo process serves on the next port. Not when a real Twilio account is configured, nor
    outside the embedded default."""
    if os.environ.get("TWILIO_ACCOUNT_SID") or os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"):
        return {}
    return {"VR_SMS_SIMULATOR": "1", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "simulator-" + secrets.token_hex(16),
            "TWILIO_API_BASE": f"http://127.0.0.1:{int(port) + 1}", "PUBLIC_URL": f"http://127.0.0.1:{port}"}


def demo(argv: list[str]) -> int:
    ensure_venv()
    port = argv[0] if argv else os.environ.get("PORT", "8000")
    env = {**os.environ, **simulator_env(port)}
    manage("migrate", "--noinput", "-v", "0")
    manage("import_consortium", str(DEMO_FILE), "--quiet")
    manage("demo_answers")  # the knowledge base's published answers, once (never over a librarian's edits)
    if os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"):
        # demo_history refuses the production engines: invented chats would land in real statistics.
        print("DATABASE_URL/REDIS_URL set: the demo's generated past is not loaded (manage.py demo_history).",
              flush=True)
    else:
        # Eight weeks of generated chats, surveys, follow-ups and rota shifts (coordination/history.py),
        # replaced by a fresh past ending now at each start: the coordinator pages show something real.
        manage("demo_history")
        manage("demo_reviews")  # transcript review: reviewers named, the last two months sampled and scored
    subprocess.run([str(PY), "manage.py", "demo_banner", "--port", port], cwd=ROOT, check=True, env=env)
    return subprocess.run([str(PY), "manage.py", "serve", "--port", port], cwd=ROOT, env=env).returncode


def test(argv: list[str]) -> int:
    ensure_venv()
    args = list(argv)
    production = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    if not any(a == "-m" or a.startswith("-m") for a in args):
        if production:
            # The fault tests kill processes for minutes: their own command (and CI stage) runs them.
            args = ["-m", "not fault", *args]
        else:
            # The live and browser suites start the production stack: PostgreSQL and Redis are needed.
            print("DATABASE_URL/REDIS_URL not set: running the embedded suite (live and browser tests need "
                  "PostgreSQL and Redis; .ci/run runs them).", flush=True)
            args = ["-m", "not live and not browser and not postgres and not fault", *args]
    return subprocess.run([str(PY), "-m", "pytest", *args], cwd=ROOT).returncode


SOAK_SECONDS = {"faults": "300", "soak": "1800"}  # per submission (CI) and before a release


SOAK_TEST = "tests/faults/test_soak.py"
# The two longest fault tests (the soak ~340 s, the reconnect storm ~230 s on a 2-core machine), run
# together beside the others.
BESIDE = [SOAK_TEST, "tests/faults/test_storm.py"]


def faults(argv: list[str], soak_seconds: str = SOAK_SECONDS["faults"]) -> int:
    ensure_venv()
    if not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")):
        print("The fault tests start the production stack and kill its processes under load: set DATABASE_URL "
              "(PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432/vr_ci) and REDIS_URL "
              "(e.g. redis://127.0.0.1:6379/12).", file=sys.stderr, flush=True)
        return 2
    env = {**os.environ, "VR_SOAK_SECONDS": os.environ.get("VR_SOAK_SECONDS", soak_seconds)}

    def pytest(*args: str) -> list[str]:
        return [str(PY), "-m", "pytest", "-m", "fault", *args]

    # Given a test path (a module, a test), only that.
    if any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in argv):
        return subprocess.run(pytest(*argv), cwd=ROOT, env=env).returncode
    # The whole directory in two runs at once: the soak and the storm in one, the others in the other.
    # Each test is a stack of its own on private servers (tests/faults/outages.py), so the two runs
    # share nothing but the cores; one after the other the fault tests were 900 s of a CI run's 1,800 s
    # budget. The soak's verdict is memory growth, which sharing the cores does not change. The
    # second run's report is printed whole after the first's.
    with tempfile.TemporaryFile() as beside_out:
        beside = subprocess.Popen(pytest(*BESIDE, "-p", "no:cacheprovider", *argv), cwd=ROOT, env=env,
                                  stdout=beside_out, stderr=subprocess.STDOUT)
        try:
            ignored = [arg for path in BESIDE for arg in ("--ignore", path)]
            others = subprocess.run(pytest("tests/faults", *ignored, *argv), cwd=ROOT, env=env).returncode
        finally:
            besides = beside.wait()
            beside_out.seek(0)
            print(f"\n--- {' and '.join(BESIDE)}, run beside the others ---", flush=True)
            sys.stdout.buffer.write(beside_out.read())
            sys.stdout.flush()
    return others or besides


def soak(argv: list[str]) -> int:
    """The release soak: tests/faults/test_soak.py alone, 30 minutes unless VR_SOAK_SECONDS says."""
    return faults([SOAK_TEST, *argv], soak_seconds=SOAK_SECONDS["soak"])


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test", "faults", "soak", "install"}:
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "install":
        ensure_venv()
        return 0
    if command == "faults":
        return faults(rest)
    if command == "soak":
        return soak(rest)
    return demo(rest) if command == "demo" else test(rest)


if __name__ == "__main__":
    sys.exit(main())
