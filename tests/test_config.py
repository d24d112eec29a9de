"""Settings: environment over TOML file over defaults; no public key on a public address."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetops.config import DEFAULT_SECRET_KEY, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "FLEETOPS_DATABASE_URL",
        "FLEETOPS_PORT",
        "FLEETOPS_HOST",
        "FLEETOPS_SECRET_KEY",
        "FLEETOPS_CONFIG",
        "FLEETOPS_ADMIN_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLEETOPS_DATA_DIR", str(tmp_path))


def test_defaults_put_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'fleetops.db'}"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_toml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fleetops.toml").write_text(
        'port = 9000\nhost = "10.1.2.3"\nlogin_max_failures = 3\n'
    )
    settings = Settings()
    assert (settings.port, settings.host, settings.login_max_failures) == (9000, "10.1.2.3", 3)
    monkeypatch.setenv("FLEETOPS_PORT", "9100")
    assert Settings().port == 9100


def test_explicit_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('database_url = "postgresql+psycopg://fleetops@db/fleetops"\n')
    monkeypatch.setenv("FLEETOPS_CONFIG", str(other))
    assert Settings().database_url == "postgresql+psycopg://fleetops@db/fleetops"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_default_secret_is_fine_on_loopback(host: str) -> None:
    Settings(host=host).check_bind()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "fleet.example.net"])
def test_default_secret_is_refused_elsewhere(host: str) -> None:
    with pytest.raises(ValueError, match="FLEETOPS_SECRET_KEY"):
        Settings(host=host, secret_key=DEFAULT_SECRET_KEY).check_bind()
    Settings(host=host, secret_key="x" * 64).check_bind()


def test_invalid_port_is_rejected() -> None:
    with pytest.raises(ValueError, match="port"):
        Settings(port=70000)
