"""Static checks of the deployment files: docker-compose.yml, infra/*, infra/stack.sh.

Docker is not available where these run, so the compose file has to be right by
construction: these tests pin the structure that a typo would silently break (start order,
healthchecks, secrets, env var names, files the image build needs).
"""

from __future__ import annotations

import configparser
import fnmatch
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from journey_ml.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "infra" / "Dockerfile"
COMPOSE_ENV = REPO / "infra" / "compose.env"
INIT_SQL = REPO / "infra" / "postgres-init.sql"
STACK_SH = REPO / "infra" / "stack.sh"

SECRETS = {"POSTGRES_PASSWORD", "PGPASSWORD", "JOURNEY_PII_SALT", "JOURNEY_API_TOKEN",
           "MLFLOW_TRACKING_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY",
           "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING"}
# what a secret in a service's environment reads from .env
SECRET_SOURCE = {"PGPASSWORD": "POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD": "MLFLOW_TRACKING_PASSWORD",
                 "PREFECT_SERVER_API_AUTH_STRING": "PREFECT_API_AUTH_STRING"}
MLFLOW_AUTH_INI = REPO / "infra" / "mlflow-auth.ini"
# ${VAR:?message}: Compose refuses to start when VAR is unset or empty.
REQUIRED_VAR = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+):\?[^}]+\}$")
# ${VAR:-default}
DEFAULTED_VAR = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+):-(?P<default>[^}]*)\}$")
HEALTHCHECKED = ("postgres", "mlflow", "prefect", "api")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def parse_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}:{n}: not KEY=value"
        assert key not in env, f"{path.name}:{n}: {key} set twice"
        env[key] = value
    return env


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def env_files(service: dict) -> list[Path]:
    files = service.get("env_file") or []
    files = [files] if isinstance(files, (str, dict)) else files
    return [REPO / (f["path"] if isinstance(f, dict) else f) for f in files]


def effective_env(service: dict) -> dict[str, str]:
    """What the container sees: env_file entries, overridden by `environment`."""
    env: dict[str, str] = {}
    for path in env_files(service):
        env.update(parse_env_file(path))
    env.update(environment(service))
    return env


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form means service_started
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def resolve_default(value: str) -> str:
    m = DEFAULTED_VAR.match(value)
    return m["default"] if m else value


# --- start order --------------------------------------------------------------------------


def test_expected_services(services):
    assert {"postgres", "mlflow", "prefect", "migrate", "api", "worker"} <= set(services)


def test_depends_on_targets_exist_with_valid_conditions(services):
    for name, svc in services.items():
        for target, condition in depends_on(svc).items():
            assert target in services, f"{name} depends on unknown service {target!r}"
            assert target != name
            assert condition in CONDITIONS, f"{name} -> {target}: bad condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target} to be healthy, but {target} has no healthcheck"
                )


def test_healthchecks(services):
    for name in HEALTHCHECKED:
        hc = services[name].get("healthcheck")
        assert hc, f"{name} has no healthcheck"
        assert not hc.get("disable"), name
        test = hc["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    # over TCP: during first-boot init the server only listens on the unix socket
    assert "127.0.0.1" in services["postgres"]["healthcheck"]["test"]
    assert any("/healthz" in part for part in services["api"]["healthcheck"]["test"])
    assert any("/api/health" in part for part in services["prefect"]["healthcheck"]["test"])


def test_backends_wait_for_healthy_postgres(services):
    for name in ("mlflow", "prefect", "migrate"):
        assert depends_on(services[name]).get("postgres") == "service_healthy", name


def test_migrate_gates_api_and_worker(services):
    migrate = services["migrate"]
    assert migrate["command"] == ["journey-ml", "db", "upgrade"]
    # a one-shot must not be restarted after it exits 0
    assert str(migrate.get("restart", "no")) == "no"
    for name in ("api", "worker"):
        deps = depends_on(services[name])
        assert deps.get("migrate") == "service_completed_successfully", name
        assert deps.get("mlflow") == "service_healthy", name
    assert depends_on(services["worker"]).get("prefect") == "service_healthy"


def test_commands(services):
    assert services["api"]["command"][:2] == ["journey-ml", "serve"]
    assert "8000" in services["api"]["command"]
    assert services["worker"]["command"] == ["python", "-m", "flows.serve"]
    assert services["mlflow"]["command"][:2] == ["mlflow", "server"]
    assert services["prefect"]["command"][:3] == ["prefect", "server", "start"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "journey-ml" in pyproject["project"]["scripts"]


# --- the image ------------------------------------------------------------------------------


def test_app_services_build_the_one_image(services):
    app = [n for n, s in services.items() if "build" in s]
    assert set(app) == {"mlflow", "prefect", "migrate", "api", "worker"}
    images = set()
    for name in app:
        build = services[name]["build"]
        assert build["context"] == "."
        assert (REPO / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE, name
        images.add(services[name]["image"])
    assert len(images) == 1, f"app services name different images: {images}"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())  # join continuation lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_copies_existing_files():
    assert (REPO / "pyproject.toml").is_file()
    copies = [rest for op, rest in dockerfile_instructions() if op == "COPY"]
    assert copies
    sources: list[str] = []
    for rest in copies:
        args = [a for a in rest.split() if not a.startswith("--")]
        sources += args[:-1]  # the last argument is the destination
    assert "pyproject.toml" in sources and "constraints.txt" in sources
    for src in sources:
        if src == "constraints.txt":
            continue  # generated by `make lock`; only its reference is checked here
        assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repo"
    for package in ("journey_ml", "flows"):
        assert package in sources, f"the image needs {package}/"


def test_dockerfile_installs_with_constraints():
    runs = [rest for op, rest in dockerfile_instructions() if op == "RUN"]
    assert any(re.search(r"\bpip install\b.*\buv\b", r) for r in runs)
    installs = [r for r in runs if "uv pip install" in r]
    assert installs and all("-c constraints.txt" in r for r in installs)
    assert any(
        re.search(r"uv pip install --system -c constraints\.txt \.(\s|$)", r) for r in installs
    )
    assert ("USER", "journey:journey") in dockerfile_instructions()


# --- secrets and environment ----------------------------------------------------------------


def test_no_literal_secrets(compose, services):
    seen = set()
    for name, svc in services.items():
        for key, value in environment(svc).items():
            if key in SECRETS:
                seen.add(key)
                m = REQUIRED_VAR.match(value)
                assert m, f"{name}.{key} must come from ${{VAR:?...}}, not a literal"
                expected = SECRET_SOURCE.get(key, key)
                assert m["var"] == expected, f"{name}.{key} reads ${m['var']}"
    assert seen == SECRETS
    assert not SECRETS & set(parse_env_file(COMPOSE_ENV)), "secrets do not belong in compose.env"
    # no password inside a URL anywhere (user:password@host)
    everything = COMPOSE_FILE.read_text() + COMPOSE_ENV.read_text()
    assert not re.search(r"://[^/\s@:]+:[^/\s@]+@", everything)


def test_services_that_touch_postgres_get_the_password(services):
    assert environment(services["postgres"])["POSTGRES_USER"] == "journey"
    for name, svc in services.items():
        env = effective_env(svc)
        uses_db = "journey@postgres" in " ".join(svc.get("command") or []) + str(env)
        if name != "postgres" and uses_db:
            assert "PGPASSWORD" in env, f"{name} connects to postgres without PGPASSWORD"


def test_journey_env_vars_are_settings_fields(services):
    prefix = Settings.model_config["env_prefix"]
    names = set(parse_env_file(COMPOSE_ENV))
    for svc in services.values():
        names |= set(environment(svc))
    journey = {n for n in names if n.startswith(prefix)}
    assert {"JOURNEY_DATABASE_URL", "JOURNEY_MLFLOW_TRACKING_URI", "JOURNEY_HOME"} <= journey
    unknown = {n for n in journey if n[len(prefix) :].lower() not in Settings.model_fields}
    assert not unknown, f"not fields of journey_ml.settings.Settings: {sorted(unknown)}"


def test_compose_env_is_plain(services):
    env = parse_env_file(COMPOSE_ENV)
    assert not any("${" in v for v in env.values()), "env_file values are not interpolated"
    assert env["DO_NOT_TRACK"] == "1"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    for name, svc in services.items():
        if "build" in svc:
            assert COMPOSE_ENV in env_files(svc), f"{name} does not load infra/compose.env"


def test_urls_point_at_services(services):
    """Host names in client URLs are compose services listening on those ports."""
    ports = {"postgres": 5432, "mlflow": 5000, "prefect": 4200}
    for name, svc in services.items():
        if "build" not in svc:
            continue
        env = effective_env(svc)
        for key in ("JOURNEY_DATABASE_URL", "JOURNEY_MLFLOW_TRACKING_URI", "PREFECT_API_URL"):
            if key not in env or (name == "prefect" and key == "PREFECT_API_URL"):
                continue
            url = urlsplit(env[key])
            assert url.hostname in ports, f"{name}.{key}={env[key]}"
            assert url.port == ports[url.hostname], f"{name}.{key}={env[key]}"
    for name, port in (("mlflow", "5000"), ("prefect", "4200")):
        cmd = services[name]["command"]
        assert cmd[cmd.index("--port") + 1] == port
        assert cmd[cmd.index("--host") + 1] == "0.0.0.0"


def test_mlflow_accepts_the_host_header_clients_send(services):
    # MLflow 3.x answers 403 to Host headers outside its allow-list (default: localhost and
    # private IPs), while /health stays exempt: a green healthcheck would not catch it.
    allowed = resolve_default(environment(services["mlflow"])["MLFLOW_SERVER_ALLOWED_HOSTS"])
    patterns = [p.strip() for p in allowed.split(",")]
    client_host = urlsplit(parse_env_file(COMPOSE_ENV)["JOURNEY_MLFLOW_TRACKING_URI"]).netloc
    for host in (client_host, "localhost:5000", "127.0.0.1:5000"):
        assert any(fnmatch.fnmatch(host, p) if "*" in p else host == p for p in patterns), host
    # and the healthcheck sends exactly that Host header to a real API endpoint
    probe = " ".join(services["mlflow"]["healthcheck"]["test"])
    assert f"'Host': '{client_host}'" in probe and "/api/2.0/mlflow/" in probe
    # ... with the admin's credentials: the basic-auth app answers 401 to anything else
    assert "'Authorization': 'Basic '" in probe and "os.environ['MLFLOW_AUTH_ADMIN_PASSWORD']" in probe


# --- closed by default (#10.5) --------------------------------------------------------------


def test_every_published_port_binds_loopback(services):
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}:"
            # HOST:PUBLISHED:TARGET, HOST possibly ${VAR:-default}; without HOST = every interface
            m = re.match(r"^(\$\{[^}]+\}|[^:]*):(\$\{[^}]+\}|[^:]+):", spec)
            host = resolve_default(m.group(1)) if m else ""
            assert host == "127.0.0.1", f"{name} publishes {spec} beyond loopback"


def test_mlflow_runs_its_basic_auth_app(services):
    mlflow = services["mlflow"]
    cmd = mlflow["command"]
    assert cmd[cmd.index("--app-name") + 1] == "basic-auth"
    env = environment(mlflow)
    ini_mount = [m for m in mlflow["volumes"] if m.startswith("./infra/mlflow-auth.ini:")]
    assert ini_mount and ini_mount[0].split(":")[1] == env["MLFLOW_AUTH_CONFIG_PATH"]
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == "admin"
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(MLFLOW_AUTH_INI)
    auth = ini["mlflow"]
    assert auth["default_permission"] in ("NO_PERMISSIONS", "READ")
    assert auth["admin_username"] == "admin" and "admin_password" not in auth
    assert urlsplit(auth["database_uri"]).path == "/mlflow_auth"
    # every client authenticates as that admin
    for name in ("api", "worker"):
        env = environment(services[name])
        assert env["MLFLOW_TRACKING_USERNAME"] == "admin"
        assert REQUIRED_VAR.match(env["MLFLOW_TRACKING_PASSWORD"])["var"] == "MLFLOW_TRACKING_PASSWORD"


def test_prefect_server_requires_the_auth_string_its_clients_send(services):
    server = environment(services["prefect"])
    assert REQUIRED_VAR.match(server["PREFECT_SERVER_API_AUTH_STRING"])["var"] == "PREFECT_API_AUTH_STRING"
    for name in ("prefect", "worker", "api"):
        env = environment(services[name])
        assert REQUIRED_VAR.match(env["PREFECT_API_AUTH_STRING"])["var"] == "PREFECT_API_AUTH_STRING", name


def test_worker_reads_exports_from_a_named_volume(compose, services):
    assert "journey-exports" in compose["volumes"]
    home = parse_env_file(COMPOSE_ENV)["JOURNEY_HOME"]
    mounts = dict(m.split(":")[:2] for m in services["worker"]["volumes"])
    # the packaged config reads sources from {home}/exports
    assert mounts["journey-exports"] == f"{home}/exports"
    assert "docker compose cp" in COMPOSE_FILE.read_text()


# --- databases ------------------------------------------------------------------------------


def test_init_sql_creates_every_database_the_stack_uses(services):
    sql = INIT_SQL.read_text()
    # names default to psql variables (stack.sh passes its own, prefixed)
    defaults = dict(re.findall(r"\\set (\w+)_db (\w+)", sql))
    created = {defaults[v] for v in re.findall(r"format\('CREATE DATABASE %I', :'(\w+)_db'\)", sql)}
    assert created == {"journey", "mlflow", "mlflow_auth", "prefect"}
    assert re.search(r"\\connect :\"prefect_db\"\s+CREATE EXTENSION IF NOT EXISTS pg_trgm;", sql)
    text = COMPOSE_FILE.read_text() + COMPOSE_ENV.read_text() + MLFLOW_AUTH_INI.read_text()
    used = set(re.findall(r"postgresql\+\w+://[^/\s]+/(\w+)", text))
    assert used == created, f"URLs use {used}, init SQL creates {created}"
    mounts = services["postgres"]["volumes"]
    assert any(
        m.startswith("./infra/postgres-init.sql:/docker-entrypoint-initdb.d/") for m in mounts
    )


def test_bind_mounts_and_env_files_exist(services):
    for name, svc in services.items():
        for path in env_files(svc):
            assert path.is_file(), f"{name}: env_file {path} missing"
        for mount in svc.get("volumes") or []:
            source = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: bind mount source {source} missing"


def test_named_volumes_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for mount in svc.get("volumes") or []:
            source = mount.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} not declared"


# --- stack.sh ---------------------------------------------------------------------------------


def test_stack_sh_parses():
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run([bash, "-n", str(STACK_SH)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr


def test_stack_sh_usage():
    result = subprocess.run(
        ["bash", str(STACK_SH), "bogus"], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 2
    assert "up|down|status|credentials" in result.stderr


def test_init_sql_runs_with_and_without_names(tmp_path):
    """psql runs it as the postgres image does (no variables) and as stack.sh does."""
    if shutil.which("psql") is None:
        pytest.skip("psql not available")
    import uuid

    import psycopg

    from tests.conftest import _admin_conninfo

    prefix = f"jml_init_{uuid.uuid4().hex[:6]}_"
    names = {v: f"{prefix}{v}" for v in ("journey", "mlflow", "mlflow_auth", "prefect")}
    args = [a for v, n in names.items() for a in ("-v", f"{v}_db={n}")]
    conn = dict(kv.split("=") for kv in _admin_conninfo().split())
    base = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", conn["host"], "-p", conn["port"], "-U", conn["user"],
            "-d", "postgres", "-f", str(INIT_SQL)]
    try:
        for _ in range(2):  # idempotent
            r = subprocess.run(base + args, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        with psycopg.connect(_admin_conninfo()) as c:
            have = {row[0] for row in c.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                                (prefix + "%",))}
        assert have == set(names.values())
        with psycopg.connect(_admin_conninfo().replace("dbname=postgres", f"dbname={names['prefect']}")) as c:
            assert c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'").fetchone()[0] == 1
    finally:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
            for n in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
