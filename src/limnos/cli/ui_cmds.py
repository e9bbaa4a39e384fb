"""``limnos ui``: serve the local web app over the lake until Ctrl-C.

It prints the URL (with the access token when the host is not loopback: the
token is shown this once) and serves in the foreground.
"""

from __future__ import annotations

from typing import Annotated

import typer

from . import render
from .app import app, open_lake


@app.command("ui", epilog="Example: limnos ui --open  |  limnos ui --host 0.0.0.0 --port 8750 --allow-edit")
def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 0,
    host: Annotated[str, typer.Option(help="Address to bind; any but loopback needs the printed token.")] = "127.0.0.1",
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
    allow_edit: Annotated[bool, typer.Option("--allow-edit", help="Allow editing metadata, locks and saved datasets.")] = False,
) -> None:
    """Browse the lake in a web browser: files, a file, lineage, datasources, steps (Ctrl-C stops it)."""
    from limnos.web.server import launch

    lake = open_lake(ctx)
    server = launch(lake, "/files", host=host, port=port, allow_edit=allow_edit, open_browser=open_browser)
    render.message(f"limnos ui: serving {lake.path} at this URL")
    if server.settings.token:
        render.message("this URL holds the access token, shown only now: keep it to yourself")
    render.message("read-only" if not allow_edit else "editing allowed: every change is a commit")
    render.message("press Ctrl-C to stop")
    print(server.url, flush=True)
    server.wait()
