"""Settings, read once at the edge and passed down.

Precedence: environment (`FLEETOPS_*`) over the optional TOML file (`FLEETOPS_CONFIG`, default
`<data dir>/fleetops.toml`) over defaults.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fleetops.metrics.schemas import MetricName

DEFAULT_SECRET_KEY = "change-me-fleetops-development-key"


def default_data_dir() -> Path:
    """Follow the XDG base directory convention so data survives a fresh clone."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fleetops"


class PrometheusSource(BaseModel):
    """A PromQL query the server runs against a Prometheus, stored as the metric `name`.

    Only settings name Prometheus servers: no request can point the server at an address."""

    model_config = ConfigDict(extra="forbid")

    name: MetricName
    query: str = Field(min_length=1, max_length=4096)
    url: str = Field(description="the Prometheus base URL, e.g. http://prometheus:9090")
    interval: float = Field(default=15, ge=1, le=3600)  # seconds between instant queries
    kind: Literal["gauge"] = "gauge"  # a query's value is a reading; rate() makes counters one

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        if parts.username or parts.password:
            raise ValueError("a URL with credentials would show them in logs: not supported")
        if parts.query or parts.fragment:
            raise ValueError("give the base URL, without ?query or #fragment")
        return value.rstrip("/")


class Settings(BaseSettings):
    """All fleetops settings; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="FLEETOPS_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: str = DEFAULT_SECRET_KEY
    admin_password: str | None = None
    # Login guessing protection.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)
    session_hours: int = Field(default=12, ge=1)
    # Cookies carry the Secure flag when the UI is reached over TLS (directly or via a proxy).
    force_secure_cookies: bool = False
    # Reverse proxies whose X-Forwarded-For / -Proto are believed (comma-separated addresses or
    # CIDRs). Empty: none, so a client is the address that connected. Behind a proxy, set it, or
    # every client shares the proxy's address (one guesser would lock out everyone).
    trusted_proxies: str = ""
    # Change management.
    executor: Literal["ssh", "local", "simulated"] = "ssh"  # a host label `executor` overrides
    # The `local` executor runs a host's steps on this server (which holds the fleet's key and the
    # database): a host's `executor: local` label is honoured only for hostnames matching these
    # shell patterns, or when `executor` itself is `local` (a lab whose only host is this one).
    local_executor_hosts: list[str] = Field(default_factory=list)
    # Where `ansible_playbook` steps find playbooks; a path resolving outside them is refused.
    playbook_dirs: list[Path] = Field(default_factory=list)
    ssh_key_path: Path | None = None
    ssh_known_hosts: Path | None = None
    ssh_host_key_policy: Literal["strict", "accept-new", "insecure"] = "accept-new"
    # sudo's password for hosts whose steps `become` another user and whose sudo asks one; sent
    # on the command's input, never in its text, never logged. Unset: sudo must not ask.
    ssh_become_password: SecretStr = SecretStr("")
    operations_dir: Path | None = None  # site operations, added to the built-in library
    approvals_medium: int = Field(default=1, ge=0, le=5)
    approvals_high: int = Field(default=2, ge=1, le=5)
    max_concurrent_hosts: int = Field(default=500, ge=1)  # fleet-wide, across all changes
    budget_rack: float = Field(default=0.4, gt=0, le=1)  # max fraction of a rack held at once
    budget_cluster: float = Field(default=0.2, gt=0, le=1)
    engine_tick_seconds: float = Field(default=0.5, gt=0)
    engine_enabled: bool = True  # `fleetops serve` runs changes; off for tests that only read
    # Log ingestion
    ingest_enabled: bool = True
    ingest_max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)  # after decompression
    ingest_max_line_bytes: int = Field(default=64 * 1024, ge=256)  # longer lines are truncated
    ingest_queue_lines: int = Field(default=200_000, ge=1000)  # beyond it: 429 / TCP read pause
    ingest_queue_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)  # the same, in bytes
    ingest_batch_lines: int = Field(default=20_000, ge=1)  # lines per database commit
    # Per token per second (a second's worth may come at once); 0 = unlimited. The default is far
    # above what a host's shipper sends, and keeps one token from taking the whole pipeline.
    ingest_rate_lines: float = Field(default=20_000, ge=0)
    ingest_future_skew_seconds: int = Field(default=300, ge=0)
    ingest_past_skew_seconds: int = Field(default=7 * 86400, ge=0)
    logs_retention_hours: float = Field(default=24, gt=0)  # raw lines kept for evidence/search
    logs_retention_bytes: int = Field(default=4 * 1024**3, ge=1024**2)
    syslog_port: int | None = Field(default=None, ge=0, le=65535)  # TCP and UDP; None = off
    syslog_host: str = "127.0.0.1"  # an IPv4 address ("0.0.0.0" for all): "::" is IPv6-only
    syslog_allow: str = ""  # comma-separated source CIDRs; empty = loopback only
    # Senders that relay for others (a central rsyslog) may name any host; every other sender
    # speaks only for the inventory hosts at its own address. Empty = no relays.
    syslog_relays: str = "127.0.0.0/8,::1"
    log_rules_file: Path | None = None  # site extraction rules, added to the built-in ones
    # False: only event time closes aggregation windows (evaluation on simulated time)
    logs_realtime: bool = True
    # Device health policy: findings → suspect, within the safety limits
    health_policy_enabled: bool = True
    health_policy_file: Path | None = None  # site rules, before the built-in ones
    health_policy_interval: float = Field(default=30, gt=0)  # seconds between policy passes
    health_suspect_per_hour: int = Field(default=20, ge=0)  # automatic suspicions per hour
    storm_fraction: float = Field(default=0.05, gt=0, le=1)  # of the fleet wanted at once: stop
    # Remediation rules: findings and predictions to changes (dry run until an admin enables each)
    remediation_enabled: bool = True
    remediation_file: Path | None = None  # site rules, before the shipped ones
    remediation_interval: float = Field(default=30, gt=0)  # seconds between remediation passes
    # Automatic isolation: caps on devices out of service (draining, isolated, in repair,
    # verifying) per rack and per cluster, and isolations per hour
    isolation_rack_fraction: float = Field(default=0.20, gt=0, le=1)
    isolation_cluster_fraction: float = Field(default=0.05, gt=0, le=1)
    isolation_per_hour: int = Field(default=10, ge=0)
    isolation_preapproved: bool = True  # False: every isolation change waits for an operator
    # A shipped workflow's name, or a site's own pinned as NAME@VERSION#sha256:DIGEST (its changes
    # run pre-approved only while the registered source has that digest); a bare name of a site's
    # own workflow works too, but then every change of it waits for review.
    isolation_workflow: str = "isolate-host"
    verification_workflow: str = "reintegrate-host"  # run by a repaired device before serving
    # The inspection probes a repaired or new device must pass (against its model's baseline)
    # before it serves; empty: only the kernel-log and disk-write checks.
    verification_probes: str = Field(
        default="cpu,memory,disk", pattern=r"^\s*([a-z]+\s*(,\s*[a-z]+\s*)*)?$"
    )
    inspection_quick: bool = False  # short probe runs (seconds, not minutes): demos and tests
    probation_days: float = Field(default=7, ge=0)
    repair_sla_hours: dict[str, float] = Field(
        default_factory=lambda: {"reboot": 8.0, "reimage": 24.0, "replace": 120.0}
    )
    repair_webhook_url: str = ""  # ticket events are POSTed here, HMAC-signed; empty = off
    repair_webhook_secret: SecretStr = SecretStr("")
    # The CLI without --server keeps the API on the local database running this many seconds
    # after its last command, so the next one starts in a fraction of a second (like ssh's
    # ControlPersist); 0: every command builds the API in its own process.
    cli_persist_seconds: int = Field(default=600, ge=0)
    # The longest JSON body the API reads (413 beyond it, before any parsing or authentication);
    # log ingestion and metrics have limits of their own.
    api_max_json_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024)
    # The HDFS client host a storage report's trash expunge runs on (a selector naming one host).
    storage_hdfs_client: str = Field(default="label:role=namenode", min_length=1, max_length=500)
    # The GB in one unit of a trace's normalised memory (a machine's GB / 100 for Alibaba's 0-100);
    # None: memory stays in the source's unit, gets no price, and recommendations in it cannot
    # be applied (a scheduler takes MB).
    resources_gb_per_memory_unit: float | None = None
    # What a core and a GB of memory cost per hour (about a public cloud's on-demand price of a
    # general-purpose vCPU and GB, in its currency): the money a resource waste report shows.
    resources_price_core_hour: float = Field(default=0.0316, ge=0)
    resources_price_gb_hour: float = Field(default=0.0042, ge=0)
    # The host accepted resource recommendations are applied from: it runs the scheduler's CLI
    # (kubectl or yarn) for the cluster (a selector naming one host).
    resources_scheduler_client: str = Field(
        default="label:role=namenode", min_length=1, max_length=500
    )
    # The scheduler the recommendations go to, and what it calls a workload group: a template
    # over the group's fields ({task_type}, {plan_cpu}, {plan_mem}, {job}, {task_name}), e.g.
    # root.batch.{task_type} (a YARN queue) or batch/deployment/spark-{task_type}/main
    # (Kubernetes NAMESPACE/KIND/NAME/CONTAINER; lowercased).
    resources_scheduler: Literal["yarn", "kubernetes"] = "yarn"
    resources_target_template: str = Field(
        default="root.batch.{task_type}", min_length=1, max_length=255
    )
    # The interface (or range) that carries a ToR's uplinks on this site's switches, which a
    # "switch link" drains unless told otherwise, e.g. Ethernet49/1-52/1 or Port-Channel100.
    # The demo's simulated switches call it `uplink`.
    link_switch_interface: str = Field(
        default="uplink", pattern=r"^[A-Za-z0-9][A-Za-z0-9/._:,-]*$", max_length=64
    )

    # Metrics from Prometheus and other pushers (docs/metrics.md)
    prometheus_sources: list[PrometheusSource] = Field(default_factory=list)
    prometheus_backfill_seconds: int = Field(default=3600, ge=0, le=7 * 86400)  # at start-up
    prometheus_timeout_seconds: float = Field(default=10, gt=0, le=300)
    metrics_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # as received
    metrics_max_decoded_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)  # after snappy

    @field_validator("prometheus_sources")
    @classmethod
    def _distinct_sources(cls, sources: list[PrometheusSource]) -> list[PrometheusSource]:
        names = [source.name for source in sources]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two sources store as {name!r}: give each its own name")
        return sources

    @field_validator("isolation_workflow", "verification_workflow")
    @classmethod
    def _workflow_setting(cls, value: str) -> str:
        from fleetops.changes.pins import check_form

        check_form(value)  # a malformed pin fails at start-up, not at the first isolation
        return value

    @model_validator(mode="after")
    def _fill_database_url(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'fleetops.db'}"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_bind(self) -> None:
        """Refuse to expose a server that signs sessions with the public default key."""
        if self.secret_key == DEFAULT_SECRET_KEY and not is_loopback(self.host):
            raise ValueError(
                f"refusing to bind {self.host} with the default secret key: "
                "set FLEETOPS_SECRET_KEY to a long random value (e.g. `openssl rand -hex 32`)"
            )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)


def _config_file() -> Path:
    explicit = os.environ.get("FLEETOPS_CONFIG")
    if explicit:
        return Path(explicit)
    data_dir = os.environ.get("FLEETOPS_DATA_DIR")
    return (Path(data_dir) if data_dir else default_data_dir()) / "fleetops.toml"


def is_loopback(host: str) -> bool:
    """Tell whether a bind address only accepts local connections."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings(**overrides: Any) -> Settings:
    """Return the process settings; the edges call this once."""
    return Settings(**overrides)
