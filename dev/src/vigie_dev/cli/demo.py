"""``vigie demo``: the engine end to end, with the live alert feed and a summary.

Registered as a single command. The live view (stderr) shows the run's progress and the
latest alerts as the targeting service reads them from Redis; ``--json`` prints the summary
as one JSON object on stdout.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from vigie.cli import output
from vigie.settings import get_settings

if TYPE_CHECKING:
    from vigie_dev.demo import Demo


def demo(
    n: int = typer.Option(20_000, "--n", min=100, help="Declarations to generate and replay."),
    seed: int = typer.Option(7, "--seed", min=0, help="Generator seed."),
    rate: float = typer.Option(2000.0, "--rate", min=1.0, help="Declarations per second."),
    timeout: float = typer.Option(
        900.0, "--timeout", min=10.0, help="Longest wait (s) for everything to be processed."
    ),
    as_json: bool = typer.Option(False, "--json", help=output.JSON_OPTION_HELP),
) -> None:
    """Stack, worker, sinks, a replayed stream with controls, the live alert feed, a summary.

    Each run has its own topics, Redis keys and directory under the state directory,
    demo/<run id>: data, logs of every child process, the embedded warehouse. Ctrl-C
    stops every child process cleanly. The demo ends by starting `vigie web` over the
    run's warehouse and printing its address and the demo accounts.
    """
    from vigie.errors import StackError
    from vigie_dev.demo import Demo, DemoError, DemoOptions

    options = DemoOptions(n=n, seed=seed, rate=rate, timeout_s=timeout)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with Live(console=output.console, refresh_per_second=4, transient=False) as live:
            run = Demo(get_settings(), options, view=lambda d: live.update(_render(d)))
            summary = run.run()
    except (DemoError, StackError) as exc:
        raise output.CommandError(str(exc)) from exc
    except KeyboardInterrupt:
        output.fail("interrupted: every child process was stopped", code=130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    output.emit(summary, as_json=as_json, title=f"vigie demo {options.run_id}")
    _announce_web(summary["web"])


def _announce_web(web: dict[str, Any]) -> None:
    """The web app's address and the demo accounts, last, for people (stderr)."""
    lines = [f"\n[bold]Vigie web is running on {web['url']}[/bold] (pid {web['pid']})"]
    for name, account in web["accounts"].items():
        who = account.get("operator", "customs staff: every operator, Pilote performance")
        lines.append(f"  {name:<10} password {account['password']}  ({who})")
    lines.append(f"Stop it with: kill {web['pid']}   (the next `make demo` stops it too)")
    output.console.print("\n".join(lines))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _render(d: Demo) -> Group:
    w, status = d.watch, d.status
    head = Table.grid(padding=(0, 2))
    head.add_column(no_wrap=True)
    head.add_row(f"[bold]{status.phase}[/bold] [dim]({status.elapsed_s:,.0f} s)[/dim]")
    head.add_row(
        f"produced [cyan]{len(w.produced_ms):,}[/cyan]/{d.options.n:,}  "
        f"scored [cyan]{len(w.scored):,}[/cyan]  alerts [red]{len(w.selected):,}[/red]  "
        f"in Redis [red]{len(w.in_redis):,}[/red]  "
        f"webhooks [red]{len(d.receiver.tally.alerts):,}[/red]"
    )
    feed = Table(title="latest alerts, read from Redis as the targeting service does")
    for column, style, width in (
        ("lodged", "dim", 10),
        ("declaration", "", 18),
        ("importer", "", 16),
        ("commodity", "", 8),
        ("risk", "red", 5),
        ("top reason", "", 12),
    ):
        feed.add_column(column, style=style or None, no_wrap=True, min_width=width)
    for alert in status.recent:
        feed.add_row(*_row(alert.model_dump(mode="json")))
    return Group(head, feed)


def _row(alert: dict[str, Any]) -> tuple[str, ...]:
    score = alert["score"]
    reasons = score.get("reasons") or []
    top = reasons[0]["text"] if reasons else "random audit"
    return (
        score["lodged_at"][:10],
        score["declaration_id"],
        score["importer"],
        score["commodity_code"],
        f"{score['risk']:.3f}",
        top[:60],
    )
