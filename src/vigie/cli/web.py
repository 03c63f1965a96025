"""``vigie web``: the Vision 360 and Pilote performance web app, and its accounts.

``vigie web`` serves the app (``--host``/``--port``, default ``VIGIE_WEB_HOST`` and
``VIGIE_WEB_PORT``) over the configured warehouse; ``vigie web accounts add/list/remove``
edits the accounts file (mode 0600, passwords as Argon2 hashes).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from vigie.cli import output, runs, services, style
from vigie.settings import get_settings, redacted

app = typer.Typer(help="The web app: Vision 360 and Pilote performance.")
accounts_app = typer.Typer(help="Accounts of the web app (customs staff and companies).")
app.add_typer(accounts_app, name="accounts")


@app.callback(invoke_without_command=True)
def web(
    context: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", metavar="ADDRESS", help="Listen address (default: VIGIE_WEB_HOST)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=1, max=65535, metavar="PORT", help="Port (default: VIGIE_WEB_PORT)."
        ),
    ] = None,
    run: str | None = style.RUN,
) -> None:
    """Serve the web app (Ctrl-C stops it)."""
    if context.invoked_subcommand is not None:
        return
    import uvicorn

    from vigie.web.app import create_app
    from vigie.web.warehouse import Warehouse, WarehouseUnavailableError

    settings = runs.settings_for(run)
    try:
        with services.quiet_drivers():
            warehouse = Warehouse.open(settings)
    except WarehouseUnavailableError as exc:  # its message is clickhouse_failure's line
        raise output.CommandError(str(exc)) from exc
    if not settings.accounts_path.exists():
        output.console.print(
            f"[yellow]no accounts yet[/yellow]: add one with vigie web accounts add "
            f"({settings.accounts_path})"
        )
    address = f"http://{host or settings.web_host}:{port or settings.web_port}"
    shown = redacted(warehouse.dsn)
    output.console.print(f"Vigie web on [bold]{address}[/bold] (warehouse {shown})")
    try:
        uvicorn.run(
            create_app(settings, warehouse),
            host=host or settings.web_host,
            port=port or settings.web_port,
            log_level="warning",
            proxy_headers=False,
        )
    finally:
        warehouse.close()


@accounts_app.command("add")
def add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name (lower case).")],
    role: Annotated[str, typer.Option("--role", metavar="ROLE", help="customs or company.")],
    operator: Annotated[
        list[str] | None,
        typer.Option(
            "--operator",
            metavar="ID",
            help="An identifier (EORI) the company reads; repeatable.",
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    as_json: bool = style.JSON,
) -> None:
    """Create or replace an account (the password is prompted, or read from stdin)."""
    from vigie.errors import ConfigurationError
    from vigie.web.accounts import AccountStore

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = AccountStore(get_settings().accounts_path)
    try:
        account = store.add(name, role, password, tuple(operator or ()))
    except ConfigurationError as exc:
        raise output.CommandError(str(exc)) from exc
    output.emit(
        {"account": account.name, "role": account.role, "operators": list(account.operators),
         "file": str(store.path)},
        as_json=as_json, title="vigie web accounts add",
    )  # fmt: skip


@accounts_app.command("list")
def list_accounts(
    as_json: bool = style.JSON,
) -> None:
    """Every account with its role and operators (never a password)."""
    from vigie.web.accounts import AccountStore

    store = AccountStore(get_settings().accounts_path)
    accounts = {
        a.name: {"role": a.role, "operators": list(a.operators)} for a in store.all().values()
    }
    output.emit({"file": str(store.path), "accounts": accounts}, as_json=as_json,
                title="vigie web accounts")  # fmt: skip


@accounts_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name.")],
    as_json: bool = style.JSON,
) -> None:
    """Delete an account: its sessions and tokens end at once."""
    from vigie.web.accounts import AccountStore

    store = AccountStore(get_settings().accounts_path)
    if not store.remove(name):
        raise output.CommandError(f"no account {name!r} in {store.path}")
    output.emit({"removed": name}, as_json=as_json, title="vigie web accounts remove")
