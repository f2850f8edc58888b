"""`fedmarket dashboard [--port P]`: serve the web dashboard (market.dashboard) for the session's marketplace."""

from __future__ import annotations

import typer

from market.cli.output import console
from market.cli.session import session


def dashboard_command(
    port: int = typer.Option(8050, "--port", help="The port to serve on."),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to bind (127.0.0.1: this machine only)."),
    refresh: float = typer.Option(5.0, "--refresh", min=1.0, help="Seconds between reloads of a running project's page."),
) -> None:
    """Serve a web page of the marketplace's projects: rounds with accuracy, flags and reasons, scores, payouts, gas and
    proving time, the money table with its conservation check, and each trainer's history. It reads only the chain and
    storage, and a running project's page reloads itself."""
    import uvicorn

    from market.dashboard.app import create_app
    from market.dashboard.views import DashboardData

    s = session()
    app = create_app(DashboardData(s.marketplace, s.storage), refresh)
    console.print(f"fedmarket dashboard of {s.marketplace.address} at http://{host}:{port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
