"""The FastAPI application: lifespan, middleware, error rendering and routers."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import secrets
import sys
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fleetops import __version__
from fleetops.analytics.resources.pages import router as resources_pages_router
from fleetops.analytics.resources.routes import router as resources_router
from fleetops.analytics.storage.pages import router as storage_pages_router
from fleetops.analytics.storage.routes import router as storage_router
from fleetops.audit.refusals import RefusalLog
from fleetops.audit.routes import router as audit_router
from fleetops.auth import service as auth_service
from fleetops.auth.dependencies import Principal
from fleetops.auth.routes import router as auth_router
from fleetops.changes import service as changes_service
from fleetops.changes.actions import Playbooks
from fleetops.changes.engine.guardrails import Budget
from fleetops.changes.engine.runner import Engine
from fleetops.changes.executor import Executor, StepRefused, Target
from fleetops.changes.operations import load_library
from fleetops.changes.pages import router as changes_pages_router
from fleetops.changes.routes import CONTROLS
from fleetops.changes.routes import router as changes_router
from fleetops.config import Settings
from fleetops.dashboard.annotations import router as annotations_router
from fleetops.dashboard.live import LiveFeed
from fleetops.dashboard.live import router as live_router
from fleetops.dashboard.pages import router as pages_router
from fleetops.dashboard.render import render_error_page, wants_html
from fleetops.db import Leadership, make_engine, make_session_factory, session_scope, upgrade
from fleetops.devices.config import device_limits, lifecycle_config
from fleetops.devices.metrics.routes import router as repair_metrics_router
from fleetops.devices.pages import router as devices_pages_router
from fleetops.devices.policy.rules import load_policy
from fleetops.devices.remediation.pages import router as remediation_pages_router
from fleetops.devices.remediation.routes import router as remediation_router
from fleetops.devices.remediation.rules import load_remediation
from fleetops.devices.repairs.routes import router as repairs_router
from fleetops.devices.repairs.webhooks import Deliverer
from fleetops.devices.routes import router as devices_router
from fleetops.devices.signals.routes import router as signals_router
from fleetops.devices.tasks import HealthPolicyTask, RemediationTask
from fleetops.errors import AppError
from fleetops.findings.pages import router as findings_pages_router
from fleetops.findings.routes import router as findings_router
from fleetops.inspection.pages import router as inspection_pages_router
from fleetops.inspection.routes import router as inspection_router
from fleetops.inspection.service import InspectionService
from fleetops.inventory.routes import router as inventory_router
from fleetops.kit.background import BackgroundService, LeaderOnly, Loop, start_all, stop_all
from fleetops.kit.nul import RefuseNul, document_no_nul
from fleetops.kit.openapi_links import Link, add_links
from fleetops.logs.diagnosis.routes import router as diagnosis_router
from fleetops.logs.pages import router as logs_pages_router
from fleetops.logs.routes import loki_router
from fleetops.logs.routes import router as logs_router
from fleetops.logs.tasks import LogServices
from fleetops.metrics.routes import router as metrics_router
from fleetops.metrics.tasks import PrometheusPoller
from fleetops.network.pages import router as network_pages_router
from fleetops.network.routes import router as network_router

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "dashboard" / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI boots from one inline script; only its page relaxes script-src.
DOCS_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")


def create_app(
    settings: Settings,
    *,
    local_principal: Principal | None = None,
    executors: Mapping[str, Executor] | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> FastAPI:
    """Build the application.

    `local_principal` is only for the in-process CLI (which never runs changes); `executors`
    replaces the default ones (ssh, local), e.g. with the simulated fleet's for the demo;
    `background` coroutines run for the server's lifetime (the demo's simulated log feed).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = make_engine(settings.database_url)
        upgrade(db)
        app.state.db = db
        app.state.read_sessions = make_session_factory(db, write=False)
        app.state.write_sessions = make_session_factory(db)
        app.state.refusals = RefusalLog(app.state.write_sessions)
        app.state.library = load_library(*filter(None, [settings.operations_dir]))
        app.state.remediation = load_remediation(settings.remediation_file)
        if local_principal is None:
            _bootstrap_admin(app, settings)
            _register_shipped(app)
        services = await start_all(_services(app, settings, executors, background))
        app.state.services = services
        try:
            yield
        finally:
            await stop_all(services)
            db.dispose()

    app = FastAPI(
        title="fleetops",
        version=__version__,
        description="Audited, guarded operation of compute fleets.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.local_principal = local_principal
    _install_middleware(app)
    _install_error_handlers(app)
    _document_api(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _include_routers(app)
    return app


def _include_routers(app: FastAPI) -> None:
    app.include_router(_health_router())
    app.include_router(auth_router, prefix="/api/v1")
    app.include_router(audit_router, prefix="/api/v1")
    app.include_router(inventory_router, prefix="/api/v1")
    app.include_router(changes_router, prefix="/api/v1")
    app.include_router(findings_router, prefix="/api/v1")
    app.include_router(devices_router, prefix="/api/v1")
    app.include_router(signals_router, prefix="/api/v1")
    app.include_router(remediation_router, prefix="/api/v1")
    app.include_router(repair_metrics_router, prefix="/api/v1")  # before /repairs/{id}
    app.include_router(repairs_router, prefix="/api/v1")
    app.include_router(logs_router, prefix="/api/v1")
    app.include_router(diagnosis_router, prefix="/api/v1")
    app.include_router(inspection_router, prefix="/api/v1")
    app.include_router(metrics_router, prefix="/api/v1")
    app.include_router(network_router, prefix="/api/v1")
    app.include_router(storage_router, prefix="/api/v1")
    app.include_router(resources_router, prefix="/api/v1")
    app.include_router(annotations_router, prefix="/api/v1")
    app.include_router(loki_router)
    app.include_router(pages_router)
    app.include_router(live_router)
    app.include_router(changes_pages_router)
    app.include_router(findings_pages_router)
    app.include_router(devices_pages_router)
    app.include_router(remediation_pages_router)
    app.include_router(logs_pages_router)
    app.include_router(inspection_pages_router)
    app.include_router(network_pages_router)
    app.include_router(storage_pages_router)
    app.include_router(resources_pages_router)


def _services(
    app: FastAPI,
    settings: Settings,
    executors: Mapping[str, Executor] | None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]],
) -> list[BackgroundService]:
    """The server's background work, in start order (stopped in reverse). Work that must happen
    once per database (changes, the health policy, webhooks, retention) runs on the elected
    leader only; every server ingests what it is sent. The in-process CLI (a local principal) runs
    none of it but the refusal counter."""
    refusals: RefusalLog = app.state.refusals
    server = app.state.local_principal is None
    leader = Leadership(app.state.db)
    app.state.leader = leader
    services: list[BackgroundService] = [leader]  # stopped last: the lead goes when all is down
    runner = (
        _engine(app, settings, executors, leader) if server and settings.engine_enabled else None
    )
    if runner is not None:
        services.append(runner)
    if server and settings.ingest_enabled:
        services.append(_LogsService(app, settings, refusals))
        retention = Loop("logs-retention", lambda: app.state.log_services.run_retention())
        services.append(LeaderOnly(retention, leader))
    services += [Loop(f"background-{i}", job) for i, job in enumerate(background)]
    if server:  # one publisher per server process, whatever the number of open screens
        feed = LiveFeed(
            app.state.read_sessions, budget_fraction=settings.isolation_cluster_fraction
        )
        app.state.live_feed = feed
        services.append(feed)

    def last_counts() -> None:
        refusals.flush(everything=True)

    services.append(Loop("refusal-counts", refusals.run_forever, on_stop=last_counts))
    if server:
        services += _device_loops(app, settings, leader, engine_on=runner is not None)
    if server and settings.prometheus_sources:
        services.append(LeaderOnly(_prometheus_poller(app, settings), leader))
    if server and settings.repair_webhook_url:
        webhooks = Deliverer(
            app.state.write_sessions,
            settings.repair_webhook_url,
            settings.repair_webhook_secret.get_secret_value(),
        )
        services.append(LeaderOnly(Loop("repair-webhooks", webhooks.run_forever), leader))
    return services


def _device_loops(
    app: FastAPI, settings: Settings, leader: Leadership, *, engine_on: bool
) -> list[BackgroundService]:
    """The health policy and the remediation rules, on the leader. Without the change engine
    the policy stops at suspicion and the rules do not run: both act through changes."""
    loops: list[BackgroundService] = []
    if settings.health_policy_enabled:
        health = HealthPolicyTask(
            app.state.write_sessions,
            load_policy(settings.health_policy_file),
            limits=device_limits(settings),
            lifecycle=lifecycle_config(settings, app.state.library) if engine_on else None,
            interval=settings.health_policy_interval,
        )
        app.state.health_policy = health
        loops.append(LeaderOnly(Loop("health-policy", health.run_forever), leader))
    if engine_on and settings.remediation_enabled:
        remedies = RemediationTask(
            app.state.write_sessions,
            app.state.remediation,
            lifecycle=lifecycle_config(settings, app.state.library),
            caps=device_limits(settings).caps,
            interval=settings.remediation_interval,
        )
        app.state.remediation_task = remedies
        loops.append(LeaderOnly(Loop("remediation", remedies.run_forever), leader))
    return loops


def _prometheus_poller(app: FastAPI, settings: Settings) -> PrometheusPoller:
    """The configured Prometheus queries, each stored as a metric (docs/metrics.md)."""
    from fleetops.adapters.prometheus import PrometheusClient

    def reader(url: str) -> PrometheusClient:
        return PrometheusClient(url, timeout=settings.prometheus_timeout_seconds)

    return PrometheusPoller(
        app.state.write_sessions,
        settings.prometheus_sources,
        reader,
        backfill=timedelta(seconds=settings.prometheus_backfill_seconds),
    )


class _LogsService:
    """The logs domain's services, published on the app for the ingest routes once started."""

    name = "logs"

    def __init__(self, app: FastAPI, settings: Settings, refusals: RefusalLog) -> None:
        self.app = app
        self.logs = LogServices(
            settings,
            app.state.write_sessions,
            realtime=settings.logs_realtime,
            refusals=refusals,
        )

    async def start(self) -> None:
        await self.logs.start()
        self.app.state.ingest = self.logs.pipeline
        self.app.state.log_services = self.logs

    async def stop(self) -> None:
        await self.logs.stop()


class _EngineRunner:
    """The change engine as a background task of the server, with its executors."""

    name = "change-engine"

    def __init__(self, engine: Engine, executors: Mapping[str, Executor]) -> None:
        self.engine = engine
        self.executors = executors
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.engine.run_forever(), name=self.name)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.engine.stop()
        for executor in self.executors.values():
            await executor.close()


def _engine(
    app: FastAPI,
    settings: Settings,
    executors: Mapping[str, Executor] | None,
    leader: Leadership,
) -> _EngineRunner:
    # Imported here: the SSH stack (asyncssh, cryptography) is for the server that runs changes,
    # not for every in-process CLI command.
    from fleetops.adapters.executors import from_settings as executors_from

    chosen = dict(executors) if executors is not None else executors_from(settings)

    def executor_for(target: Target) -> Executor:
        name = target.labels.get("executor", settings.executor)
        if name not in chosen:
            raise KeyError(f"no executor {name!r} (have: {', '.join(chosen)})")
        if name == "local" and not local_allowed(settings, target.hostname):
            raise StepRefused(
                f"host {target.hostname} asks for the local executor, which would run its steps "
                "on the fleetops server: an admin allows that per host (local_executor_hosts)"
            )
        return chosen[name]

    engine = Engine(
        sessions=app.state.write_sessions,
        library=app.state.library,
        executor_for=executor_for,
        budget=Budget(
            rack=settings.budget_rack,
            cluster=settings.budget_cluster,
            max_hosts=settings.max_concurrent_hosts,
        ),
        tick=settings.engine_tick_seconds,
        read_sessions=app.state.read_sessions,
        served={
            "inspect_hardware": InspectionService(app.state.write_sessions).action,
            "ansible_playbook": Playbooks(
                dirs=tuple(settings.playbook_dirs),
                key_path=settings.ssh_key_path,
                known_hosts=settings.ssh_known_hosts,
                host_key_policy=settings.ssh_host_key_policy,
            ).action,
        },
        leadership=leader,
    )
    runner = _EngineRunner(engine, chosen)
    app.state.change_engine = engine
    return runner


def local_allowed(settings: Settings, hostname: str) -> bool:
    """Whether a host may run its steps on this server (the `local` executor)."""
    if settings.executor == "local":
        return True
    return any(fnmatch.fnmatchcase(hostname, pattern) for pattern in settings.local_executor_hosts)


def _bootstrap_admin(app: FastAPI, settings: Settings) -> None:
    with session_scope(app.state.write_sessions) as session:
        created = auth_service.ensure_admin(session, password=settings.admin_password)
    if created and created[1]:
        # Shown once, on the console only: never logged, never stored in clear.
        sys.stderr.write(f"fleetops: created user 'admin' with one-time password: {created[1]}\n")


def _register_shipped(app: FastAPI) -> None:
    try:
        with session_scope(app.state.write_sessions) as session:
            changes_service.register_shipped(session, library=app.state.library)
    except IntegrityError:
        pass  # another server registered them at the same moment


def _health_router() -> Any:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/api/health", tags=["health"])
    def health(request: Request) -> dict[str, str]:
        """Liveness and database reachability; the one route that needs no authentication."""
        with request.app.state.read_sessions() as session:
            session.connection().exec_driver_sql("SELECT 1")
        return {"status": "ok", "version": __version__}

    @router.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="fleetops API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    return router


_HOST = "/api/v1/hosts/{hostname}"
_DEVICE = "/api/v1/devices/{hostname}"
_CHANGE = "/api/v1/changes/{change_id}"
API_LINKS = [
    Link(
        "POST /api/v1/hosts",
        (
            f"GET {_HOST}",
            f"PATCH {_HOST}",
            f"DELETE {_HOST}",
            f"GET {_DEVICE}",
            f"GET {_DEVICE}/history",
            f"POST {_DEVICE}/transition",
            f"POST {_DEVICE}/signals",
        ),
        {"hostname": "$response.body#/hostname"},
    ),
    Link(
        "POST /api/v1/racks",
        tuple(f"{m} /api/v1/racks/{{name}}" for m in ("GET", "PATCH", "DELETE")),
        {"name": "$response.body#/name"},
    ),
    Link(
        "POST /api/v1/workflows",
        ("GET /api/v1/workflows/{name}",),
        {"name": "$response.body#/name"},
    ),
    Link(
        "POST /api/v1/changes",
        (
            f"GET {_CHANGE}",
            f"GET {_CHANGE}/steps",
            *(f"POST {_CHANGE}/{a}" for a in ("approve", "reject", *CONTROLS)),
        ),
        {"change_id": "$response.body#/id"},
    ),
    Link(
        "POST /api/v1/adhoc",
        ("POST /api/v1/adhoc/{change_id}/results", f"GET {_CHANGE}", f"GET {_CHANGE}/steps"),
        {"change_id": "$response.body#/change_id"},
    ),
    Link(
        "POST /api/v1/inspections",
        (f"GET {_CHANGE}", f"GET {_CHANGE}/steps", f"POST {_CHANGE}/cancel"),
        {"change_id": "$response.body#/change_id"},
    ),
    Link(
        "POST /api/v1/devices/{hostname}/admit",
        (f"GET {_CHANGE}",),
        {"change_id": "$response.body#/change_id"},
    ),
]


def _document_api(app: FastAPI) -> None:
    """The served document: the routes', plus the NUL rule and the links between operations."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_links(document_no_nul(build()), API_LINKS)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def _install_middleware(app: FastAPI) -> None:
    settings = app.state.settings
    app.add_middleware(
        RefuseNul,
        prefix="/api/",
        raw=frozenset({"/api/v1/logs"}),  # bounded by ingest_max_body_bytes, as it decompresses
        limit=settings.api_max_json_bytes,
        limits={"/api/v1/metrics": (settings.metrics_max_body_bytes, "metrics_max_body_bytes")},
    )

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get("x-request-id", "")
        request.state.request_id = (
            incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else secrets.token_hex(8)
        )
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        docs = request.url.path == "/api/docs"
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else CSP)
        return response


def _error_response(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    if wants_html(request):
        return render_error_page(request, status, body)
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        return _error_response(request, exc.status_code, exc.to_json(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:10])
        body = {"error": "ValidationError", "detail": detail, "errors": errors}
        return _error_response(request, 422, body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        names = {404: "NotFound", 405: "MethodNotAllowed"}
        body = {"error": names.get(exc.status_code, "HTTPError"), "detail": str(exc.detail)}
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not just the first route's
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return _error_response(request, exc.status_code, body, headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods the routes matching this path answer (RFC 9110 `Allow`)."""
    path = request.url.path
    matching = [
        route
        for route in _flat_routes(request.app.routes)
        if getattr(route, "methods", None)
        and getattr(route, "path_regex", None) is not None
        and route.path_regex.match(path)
    ]
    # A literal path (`/workflows/validate`) is its own resource, not `/workflows/{name}`.
    literal = [route for route in matching if route.path == path]
    return sorted({method for route in literal or matching for method in route.methods})


def _flat_routes(routes: Sequence[Any]) -> Iterator[Any]:
    """The app's routes with included routers expanded (FastAPI keeps them lazily)."""
    for route in routes:
        expand = getattr(route, "effective_route_contexts", None)
        yield from expand() if expand else [route]
