"""deploy/: the systemd units, compose.yaml and the Dockerfile run what deploy/Procfile says; nginx's timeouts fit
daphne's pings; the example environment documents every variable the settings read. Where the tools are on
the machine, `nginx -t`, `systemd-analyze verify` and `sh -n` check the files' syntax too (Docker cannot run
here: compose.yaml is checked as YAML against the compose-spec keys it uses)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
VENV_BIN = "/opt/vr/.venv/bin/"
UNIT_OF = {"web": "vr-web@.service", "timer": "vr-timer.service", "worker": "vr-worker@.service",
           "beat": "vr-beat.service"}


def procfile() -> dict[str, list[str]]:
    kinds = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            kinds[name.strip()] = shlex.split(command)
    return kinds


def exec_start(unit: str) -> list[str]:
    lines = [line for line in (UNITS / unit).read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, unit
    return shlex.split(lines[0].removeprefix("ExecStart="))


def test_every_process_type_has_a_unit_that_runs_its_procfile_line() -> None:
    kinds = procfile()
    assert {"web", "timer", "worker"} <= set(kinds)
    for kind in kinds:
        if kind == "release":
            continue  # migrations: run by hand in an upgrade (docs/deploy.md), before the restarts
        assert kind in UNIT_OF, f"no systemd unit for the Procfile's {kind!r}"
        extra = ["-n", "vr%i@%%h"] if kind == "worker" else []  # several workers on one host: own node names
        assert exec_start(UNIT_OF[kind]) == ["/opt/vr/deploy/bin/vr-proc", kind, *extra], kind
    assert "Environment=PATH=/opt/vr/.venv/bin:" in (UNITS / "vr-web@.service").read_text()
    assert "PORT=%i HOST=127.0.0.1" in (UNITS / "vr-web@.service").read_text()
    # The scheduler's unit is ready even while the Procfile has no beat line.
    assert (UNITS / "vr-beat.service").exists()


def run_proc(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{ROOT / '.venv' / 'bin'}:{Path(shutil.which('python3') or '/usr/bin/python3').parent}:/usr/bin:/bin"
    return subprocess.run([str(DEPLOY / "bin" / "vr-proc"), *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": path, "HOME": "/tmp", **env}, cwd="/")


def test_vr_proc_runs_the_procfile_line_with_extra_arguments() -> None:
    assert subprocess.run(["sh", "-n", str(DEPLOY / "bin" / "vr-proc")], timeout=30).returncode == 0
    r = run_proc("timer", "--help", DJANGO_SECRET_KEY="k" * 50, VR_DATA_DIR="/tmp/vr-proc-test")
    assert r.returncode == 0 and "run_timer" in r.stdout, r.stderr
    r = run_proc("no-such-process")
    assert r.returncode == 2 and "has no 'no-such-process' process" in r.stderr


def test_units_belong_to_the_target_and_run_unprivileged() -> None:
    for unit in UNIT_OF.values():
        text = (UNITS / unit).read_text()
        for line in ("PartOf=vr.target", "WantedBy=vr.target", "User=vr", "EnvironmentFile=/etc/vr/vr.env",
                     "Restart=always", "ProtectSystem=strict", "ReadWritePaths=/var/lib/vr"):
            assert line in text.splitlines(), f"{unit}: {line}"
    assert "WantedBy=multi-user.target" in (UNITS / "vr.target").read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    # verify insists that the binaries exist: point the copies at this checkout and its venv.
    venv = Path(shutil.which("daphne") or ROOT / ".venv" / "bin" / "daphne").parent
    env_file = tmp_path / "vr.env"
    env_file.write_text("LOG_FORMAT=json\n")
    names = []
    for unit in [*UNIT_OF.values(), "vr.target"]:
        text = (UNITS / unit).read_text().replace(VENV_BIN, f"{venv}/").replace("/opt/vr", str(ROOT))
        text = text.replace("/etc/vr/vr.env", str(env_file))
        name = unit.replace("@.", "@1.")
        (tmp_path / name).write_text(text)
        names.append(f"./{name}")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    assert r.returncode == 0 and problems == [], problems


# --- nginx ---------------------------------------------------------------------------------------------------


def nginx_conf() -> str:
    return (DEPLOY / "nginx" / "vr.conf").read_text()


def location(conf: str, prefix: str) -> str:
    match = re.search(r"location\s+" + re.escape(prefix) + r"\s*\{(.*?)\n    \}", conf, re.S)
    assert match, prefix
    return match.group(1)


def seconds(block: str, directive: str) -> int:
    match = re.search(rf"^\s*{directive}\s+(\d+)s;", block, re.M)
    assert match, directive
    return int(match.group(1))


@pytest.mark.parametrize("name", ["vr.conf", "compose.conf.template"])
def test_nginx_proxies_websockets_with_timeouts_that_fit_daphnes_pings(name: str) -> None:
    conf = (DEPLOY / "nginx" / name).read_text()
    web = procfile()["web"]
    ping = int(web[web.index("--ping-interval") + 1]) + int(web[web.index("--ping-timeout") + 1])
    ws = location(conf, "/ws/")
    assert seconds(ws, "proxy_read_timeout") > ping, "nginx would cut a live socket before daphne decides"
    # The long-poll fallback waits 25 s for news.
    assert seconds(conf, "proxy_read_timeout") > 25
    for header in ("Upgrade $http_upgrade", "Connection $vr_connection", "X-Forwarded-Proto $scheme",
                   "X-Forwarded-For $remote_addr", "Host $host"):
        assert f"proxy_set_header {header};" in conf, header
    # A client must not choose the address daphne sees (it takes the first one of X-Forwarded-For).
    assert not re.search(r"^\s*proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for", conf, re.M)
    assert "least_conn;" in conf and "ip_hash" not in conf.split("upstream", 1)[1].split("}", 1)[0]
    assert "return 301 https://$host$request_uri;" in conf
    assert "deny all;" in location(conf, "= /metrics")


@pytest.mark.parametrize("name", ["vr.conf", "compose.conf.template"])
def test_static_files_are_revalidated_so_no_browser_mixes_two_releases_modules(name: str) -> None:
    """The console's ES modules import each other under unversioned names: cached for an hour, a browser
    could run one release's modules beside another's after an upgrade."""
    static = location((DEPLOY / "nginx" / name).read_text(), "/static/")
    assert 'add_header Cache-Control "no-cache" always;' in static
    assert "expires" not in static


def test_nginx_upstreams_and_units_agree_on_the_ports() -> None:
    ports = re.findall(r"server 127\.0\.0\.1:(\d+)", nginx_conf())
    assert len(ports) >= 2
    docs = (ROOT / "docs" / "deploy.md")
    if docs.exists():
        for port in ports:
            assert f"vr-web@{port}" in docs.read_text(), f"docs/deploy.md does not enable vr-web@{port}"


@pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("openssl") is None,
                    reason="nginx or openssl is not installed")
def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=chat.example.org", "-keyout", str(tmp_path / "privkey.pem"), "-out",
                    str(tmp_path / "fullchain.pem")], check=True, capture_output=True, timeout=60)
    site = nginx_conf().replace("/etc/letsencrypt/live/chat.example.org/", f"{tmp_path}/")
    (tmp_path / "vr.conf").write_text(site)
    mime = "/etc/nginx/mime.types"
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n"
        + (f"  include {mime};\n" if Path(mime).exists() else "")
        + f"  include {tmp_path}/vr.conf;\n}}\n")
    r = subprocess.run(["nginx", "-t", "-q", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


# --- containers ----------------------------------------------------------------------------------------------

# The service keys of the compose specification that compose.yaml may use (compose-spec's schema has more).
COMPOSE_SERVICE_KEYS = {"image", "build", "env_file", "environment", "volumes", "restart", "depends_on", "command",
                        "stop_grace_period", "ulimits", "healthcheck", "ports"}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def test_compose_runs_every_procfile_process_through_vr_proc() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "web1", "web2", "timer", "worker", "beat", "nginx", "release"} <= set(services)
    for name, kind in (("web1", "web"), ("web2", "web"), ("timer", "timer"), ("worker", "worker"),
                       ("beat", "beat"), ("release", "release")):
        assert kind in procfile(), kind
        assert services[name]["command"] == ["/app/deploy/bin/vr-proc", kind], name
    for name, service in services.items():
        assert set(service) <= COMPOSE_SERVICE_KEYS, (name, set(service) - COMPOSE_SERVICE_KEYS)
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services and dependency != name
            assert rule["condition"] in {"service_started", "service_healthy", "service_completed_successfully"}
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith("/") or source in compose()["volumes"], (name, volume)
    for app in ("web1", "web2", "timer", "worker", "beat"):
        assert services[app]["depends_on"]["release"]["condition"] == "service_completed_successfully"
    assert services["nginx"]["depends_on"]["web1"]["condition"] == "service_healthy"


def test_dockerfile_installs_the_lock_with_hashes_and_runs_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim AS app" in text
    assert "pip install --require-hashes" in text and "requirements/base.lock" in text
    assert "collectstatic --noinput" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert 'CMD ["/app/deploy/bin/vr-proc", "web"]' in text
    assert "HOST=0.0.0.0" in text and "PORT=8000" in text


# --- the environment ---------------------------------------------------------------------------------------


def variables_read_by_settings() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "consortium").glob("*settings*.py"):
        if path.name == "test_settings.py":
            continue
        text = path.read_text()
        names |= set(re.findall(r'os\.environ(?:\.get)?[\[(]"([A-Z_]+)"', text))
        names |= set(re.findall(r'env_bool\("([A-Z_]+)"', text))
    return names


def test_the_example_environment_documents_every_variable() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (DEPLOY / "env.example").read_text(), re.M))
    spec = ROOT.parent / "shared" / "spec" / "RUNNING.md"
    from_spec = set(re.findall(r"^\| `([A-Z_]+)` \|", spec.read_text(), re.M)) if spec.exists() else set()
    missing = (variables_read_by_settings() | from_spec) - documented
    assert not missing, f"deploy/env.example does not document {sorted(missing)}"


def test_the_manage_wrapper_is_valid_shell_and_the_env_file_sources() -> None:
    assert subprocess.run(["sh", "-n", str(DEPLOY / "bin" / "vr-manage")], timeout=30).returncode == 0
    r = subprocess.run(["sh", "-c", f'set -a; . "{DEPLOY / "env.example"}"; echo "$DEFAULT_FROM_EMAIL|$HTTPS"'],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "Ask a Librarian <noreply@chat.example.org>|true"
