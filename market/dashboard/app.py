"""`fedmarket dashboard`: a local web page over one marketplace, read from the chain and storage only.

Pages are rendered on the server (Jinja2 templates, matplotlib SVG plots); a page of a project that is still
running reloads itself every `refresh_s` seconds. Every page has its JSON twin under /api for scripts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from market.dashboard.plots import accuracy_svg, payouts_svg
from market.dashboard.views import DashboardData
from market.errors import ConfigError, FedMarketError, TransientError
from market.protocol.constants import ETHER


def _ether(wei: int) -> str:
    """Wei as ether with 4 decimals."""
    return f"{wei / ETHER:,.4f}"


def _short(address: str) -> str:
    """0x1234…abcd."""
    return f"{address[:6]}…{address[-4:]}"


def _when(timestamp: int) -> str:
    """A chain timestamp in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pct(x: float | None) -> str:
    """A fraction as a percentage, "?" when the aggregator did not report it."""
    return "?" if x is None else f"{100 * x:.1f}%"


def templates() -> Environment:
    """The page templates, HTML-escaped, with the money, address and time filters."""
    env = Environment(loader=PackageLoader("market.dashboard", "templates"), autoescape=select_autoescape(["html"]))
    env.filters.update(ether=_ether, short=_short, when=_when, pct=_pct)
    return env


def _status(exc: FedMarketError) -> int:
    """The HTTP status of an error: 404 for an unknown project, 503 when the chain or storage is unreachable."""
    if isinstance(exc, TransientError):
        return 503
    return 404 if isinstance(exc, ConfigError) else 500


def create_app(data: DashboardData, refresh_s: float = 5.0) -> FastAPI:
    """The dashboard's app over `data`; running projects' pages reload every `refresh_s` seconds."""
    app = FastAPI(title="fedmarket dashboard", docs_url=None, redoc_url=None)
    env = templates()

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context = {"market": data.market.address, "chain_id": data.market.chain.chain_id, "refresh": None, **context}
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    @app.exception_handler(FedMarketError)
    async def failed(request: Request, exc: FedMarketError) -> HTMLResponse | JSONResponse:
        """A FedMarketError as a page (or JSON under /api) that names what went wrong."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=_status(exc))
        return page("error.html", _status(exc), error=type(exc).__name__, detail=str(exc))

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        """Every project of the marketplace."""
        return page("index.html", projects=data.projects(), refresh=refresh_s)

    @app.get("/project/{pid}", response_class=HTMLResponse)
    def project(pid: int) -> HTMLResponse:
        """One project: rounds, accuracy plot, trainers, payouts and the money table."""
        p = data.project(pid)
        return page("project.html", p=p, accuracy=accuracy_svg(p["rounds_table"]), payouts=payouts_svg(p["trainers"]),
                    refresh=None if p["finished"] else refresh_s)

    @app.get("/trainer/{address}", response_class=HTMLResponse)
    def trainer(address: str) -> HTMLResponse:
        """One trainer's history across the marketplace's projects."""
        t = data.trainer(address)
        running = any(p["state"] not in ("FINISHED", "CANCELLED") for p in t["projects"])
        return page("trainer.html", t=t, refresh=refresh_s if running else None)

    @app.get("/api/projects")
    def api_projects() -> list[dict[str, Any]]:
        """The projects as JSON (`fedmarket projects --json`)."""
        return data.projects()

    @app.get("/api/project/{pid}")
    def api_project(pid: int) -> dict[str, Any]:
        """One project as JSON."""
        return data.project(pid)

    @app.get("/api/trainer/{address}")
    def api_trainer(address: str) -> dict[str, Any]:
        """One trainer's history as JSON."""
        return data.trainer(address)

    return app
