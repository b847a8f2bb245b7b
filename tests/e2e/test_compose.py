"""docker-compose.yaml describes the production deployment (fast: no docker engine needed).

`docker compose config` runs too where the compose plugin exists; this kind of machine has
only the docker client, so there the structure is checked from the YAML alone.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.e2e.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = ["airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_and_profiles(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", *AIRFLOW_SERVICES}
    # LocalExecutor by default: no profile on the core services, Celery pieces behind one.
    for name in ("postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer"):
        assert "profiles" not in services[name], name
    assert services["redis"]["profiles"] == ["celery"]
    assert services["airflow-worker"]["profiles"] == ["celery"]
    assert services["airflow-worker"]["command"][:3] == ["airflow", "celery", "worker"]
    assert "deploy" not in services["airflow-worker"] or "replicas" not in services["airflow-worker"]["deploy"]
    assert services["airflow-worker"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_airflow_services_share_config_mounts_and_secrets_from_env(compose: dict) -> None:
    services = compose["services"]
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/"), name
        assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == "blofin_celery_config.CELERY_CONFIG", name
        assert '"conn_type": "postgres"' in env["AIRFLOW_CONN_BLOFIN_DB"] and '"schema": "blofin"' in env["AIRFLOW_CONN_BLOFIN_DB"]
        targets = {v.split(":")[1] for v in svc["volumes"]}
        assert {"/opt/blofin/dags", "/opt/blofin/plugins", "/opt/blofin/include", "/opt/blofin/workspace"} <= targets
        assert all(v.endswith(":ro") for v in svc["volumes"] if v.startswith("./")), name
        assert svc["build"]["dockerfile"] == "docker/Dockerfile"
        # Secrets are never literals: each one is a required variable from .env.
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[key]), (name, key)
        assert "${POSTGRES_PASSWORD" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["airflow-apiserver"]["ports"] == ["127.0.0.1:${AIRFLOW_PORT:-8080}:8080"]
    assert set(compose["volumes"]) >= {"postgres-data", "blofin-workspace", "airflow-logs"}


def test_init_prepares_metadata_pool_login_and_data_db(compose: dict) -> None:
    script = compose["services"]["airflow-init"]["command"][-1]
    for step in ("airflow db migrate", "airflow pools set anthropic_api 3", "AIRFLOW_ADMIN_PASSWORD",
                 "blofin_pipeline --db", "init-db"):
        assert step in script
    init_sql = (ROOT / "docker" / "postgres-init" / "01-blofin-data-db.sql").read_text()
    assert "CREATE DATABASE blofin" in init_sql


def test_dockerfile_installs_the_pinned_requirements_and_the_library() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "-r /tmp/requirements.txt" in dockerfile
    assert "COPY --chown=50000:0 blofin_pipeline" in dockerfile
    assert "PYTHONPATH=/opt/blofin/plugins:/opt/blofin" in dockerfile
    assert "docker/blofin_celery_config.py /opt/blofin/blofin_celery_config.py" in dockerfile
    example = (ROOT / "docker" / ".env.example").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)[:}?-]", COMPOSE.read_text()))  # not $${...}: container-side
    documented = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.M))
    assert used <= documented, f"variables missing from docker/.env.example: {used - documented}"


def test_celery_config_module_disables_prefetch() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("blofin_celery_config", ROOT / "docker" / "blofin_celery_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.CELERY_CONFIG["worker_disable_prefetch"] is True
    assert module.CELERY_CONFIG["task_acks_late"] is True  # Airflow's defaults are kept


def _docker_compose() -> bool:
    """`docker compose config` is client-side: it needs the compose plugin, not the engine."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0


def test_docker_compose_config_where_compose_exists() -> None:
    if not _docker_compose():
        pytest.skip("no `docker compose` here (docker client without the compose plugin): "
                    "docker-compose.yaml checked structurally by the tests above")
    env = {**os.environ, "POSTGRES_PASSWORD": "x", "AIRFLOW_FERNET_KEY": "x", "AIRFLOW_API_SECRET_KEY": "x",
           "AIRFLOW_JWT_SECRET": "x"}
    for profile in ([], ["--profile", "celery"]):
        done = subprocess.run(["docker", "compose", "-f", str(COMPOSE), *profile, "config", "--quiet"],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr


def test_the_image_creates_and_owns_every_named_volume_path(compose: dict) -> None:
    """Docker creates a named volume's mount point root-owned unless the image already has
    it: each one an Airflow service mounts must exist in our image, owned by the airflow
    user (uid 50000)."""
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    named = set(compose.get("volumes") or {})
    targets = {v.split(":")[1] for name in AIRFLOW_SERVICES for v in compose["services"][name].get("volumes", [])
               if isinstance(v, str) and v.split(":")[0] in named}
    assert targets, "no named volumes found"
    run = " ".join(line.strip().rstrip("\\") for line in dockerfile.splitlines())
    mkdir = re.search(r"mkdir -p ([^&]+)&&", run)
    chown = re.search(r"chown -R 50000:0 ([^&]+?)(?:&&|$| COPY| RUN)", run)
    assert mkdir and chown, "the Dockerfile must create and chown the volume paths"
    missing = sorted(t for t in targets if t not in mkdir.group(1).split())
    unowned = sorted(t for t in targets if not any(t == p or t.startswith(p + "/") for p in chown.group(1).split()))  # -R
    assert not missing and not unowned, f"not created: {missing}; not owned by 50000: {unowned}"
