"""deploy/docker-compose.yml is valid YAML and matches the README's "Running over ClickHouse" commands.

Docker cannot run here (no registry), so the compose file is checked the way a reader would use
it: the store and control URLs the README tells them to export must reach the ports the compose
file publishes, as the users, passwords and databases it creates. The store URLs go through the
product's own parser, so a README URL tracesieve would reject fails here too.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from server.storage.urls import parse_store_url

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
README = (ROOT / "README.md").read_text(encoding="utf-8")
_URL = r"[^\s'\"`]+"


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


SECTION = _section("Running over ClickHouse")


@pytest.fixture(scope="module")
def services() -> dict:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(compose, dict) and isinstance(compose.get("services"), dict), "compose has no services map"
    return compose["services"]


def _published(service: dict, container_port: int) -> tuple[str, int]:
    """(host address, host port) publishing ``container_port``; fails if it is not published."""
    for entry in service.get("ports", []):
        host_ip, host_port, target = str(entry).rsplit(":", 2) if str(entry).count(":") == 2 else \
            ("0.0.0.0", *str(entry).split(":"))
        if int(target) == container_port:
            return host_ip, int(host_port)
    raise AssertionError(f"container port {container_port} is not published: {service.get('ports')}")


def _local_urls(prefix: str) -> list[str]:
    """The README section's URLs with ``prefix`` aimed at this host (the compose deployment)."""
    urls = [u for u in re.findall(rf"{prefix}{_URL}", SECTION) if "@127.0.0.1:" in u or "@localhost:" in u]
    assert urls, f"the README section shows no {prefix} URL for the compose deployment"
    return urls


def test_the_readme_runs_the_compose_file_that_exists() -> None:
    command = re.search(r"docker compose -f (\S+) up", SECTION)
    assert command is not None, "the README section does not say how to start the compose file"
    assert (ROOT / command.group(1)).resolve() == COMPOSE.resolve()


def test_clickhouse_urls_reach_the_compose_server(services: dict) -> None:
    clickhouse = services["clickhouse"]
    env = clickhouse["environment"]
    assert str(clickhouse["image"]).startswith("clickhouse/clickhouse-server:")
    assert not str(clickhouse["image"]).endswith(":latest"), "pin the server version"
    host_ip, host_port = _published(clickhouse, 8123)
    assert host_ip == "127.0.0.1", "publish on loopback only: the passwords in the file are examples"
    for text in _local_urls("clickhouse://"):
        url = parse_store_url(text)
        assert (url.engine, url.port, url.secure) == ("clickhouse", host_port, False), text
        assert (url.username, url.password, url.database) == (
            env["CLICKHOUSE_USER"], env["CLICKHOUSE_PASSWORD"], env["CLICKHOUSE_DB"]), text


def test_control_urls_reach_the_compose_postgres(services: dict) -> None:
    postgres = services["postgres"]
    env = postgres["environment"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)*", str(postgres["image"])), "pin the PostgreSQL major version"
    host_ip, host_port = _published(postgres, 5432)
    assert host_ip == "127.0.0.1"
    for text in _local_urls("postgresql://"):
        url = urlsplit(text)
        assert url.port == host_port, text
        assert (url.username, url.password, url.path.strip("/")) == (
            env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]), text


def test_compose_comments_and_readme_give_the_same_urls() -> None:
    """The compose file's header repeats the exports; they must not drift from the README's."""
    header = COMPOSE.read_text(encoding="utf-8")
    for name in ("TRACESIEVE_STORE", "TRACESIEVE_CONTROL"):
        in_compose = re.search(rf"export {name}=({_URL})", header)
        in_readme = re.search(rf"export {name}=({_URL})", SECTION)
        assert in_compose and in_readme, name
        assert in_compose.group(1) == in_readme.group(1), name


def test_cloud_settings_use_https_on_8443() -> None:
    cloud = [parse_store_url(u) for u in re.findall(rf"clickhouse\+https://{_URL}", SECTION)]
    assert cloud, "the README section gives no ClickHouse Cloud URL"
    assert all(u.secure and u.port == 8443 and u.host and u.host.endswith(".clickhouse.cloud") for u in cloud)
