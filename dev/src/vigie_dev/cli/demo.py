"""``vigie demo``: the engine end to end, with the live alert feed and a summary.

Registered as a single command. The live view (stderr) shows the run's progress and the
latest alerts as the targeting service reads them from Redis; the summary (stdout) is a
few grouped lines that say what each figure measures, then the commands that explore the
run and the web app's accounts. ``--json`` prints the summary as one JSON object instead.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from vigie.cli import output, style
from vigie.settings import get_settings

if TYPE_CHECKING:
    from vigie_dev.demo import Demo


def demo(
    declarations: int = typer.Option(
        20_000, "--declarations", min=100, metavar="N", help="Declarations to generate and replay."
    ),
    seed: int = typer.Option(7, "--seed", min=0, metavar="N", help="Generator seed."),
    rate: float = typer.Option(
        2000.0, "--rate", min=1.0, metavar="PER_SECOND", help="Declarations replayed a second."
    ),
    timeout: float = typer.Option(
        900.0,
        "--timeout",
        min=10.0,
        metavar="SECONDS",
        help="Longest wait for everything to be processed.",
    ),
    as_json: bool = style.JSON,
) -> None:
    """Stack, worker, sinks, a replayed stream with controls, the live alert feed, a summary.

    Each run has its own topics, Redis keys and directory under the state directory,
    demo/RUN: data, logs of every child process, the embedded warehouse. The summary ends
    with the commands that read the run again (--run RUN, or --run latest). Ctrl-C stops
    every child process cleanly. The demo ends by starting vigie web over a copy of the
    run's warehouse and printing its address and the demo accounts.
    """
    from vigie.errors import StackError
    from vigie_dev.demo import Demo, DemoError, DemoOptions

    options = DemoOptions(n=declarations, seed=seed, rate=rate, timeout_s=timeout)
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
    if as_json:
        output.print_json(summary)
        return
    _announce(summary)


def _announce(summary: dict[str, Any]) -> None:
    """The summary, the next commands, the web app and its accounts, for people (stdout)."""
    from rich.markup import escape

    from vigie_dev.demo.report import summary_lines

    web = summary["web"]
    lines = [*summary_lines(summary), "", "[bold]Explore this run[/bold] (--run latest works too)"]
    lines.extend(f"  {escape(command)}" for command in summary["next"])
    lines.append(f"[bold]Vigie web[/bold] on {web['url']} (pid {web['pid']}), with:")
    for name, account in web["accounts"].items():
        who = account.get("operator", "customs staff: every operator, Pilote performance")
        lines.append(f"  {name:<10} password {escape(account['password'])}  ({who})")
    lines.append("  (the next vigie demo stops it too)")
    output.make_console().print("\n".join(lines), highlight=False)


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
    for column, look, width in (
        ("lodged", "dim", 10),
        ("declaration", "", 18),
        ("importer", "", 16),
        ("commodity", "", 8),
        ("risk", "red", 5),
        ("why", "", 12),
    ):
        feed.add_column(column, style=look or None, no_wrap=True, min_width=width)
    for alert in status.recent:
        feed.add_row(*_row(alert.model_dump(mode="json")))
    return Group(head, feed)


def _row(alert: dict[str, Any]) -> tuple[str, ...]:
    """One alert of the live table; a random audit says so, not a reason of its risk.

    >>> from vigie.sinks.examples import example_alert
    >>> _row(example_alert("D-1", kind="random_audit").model_dump(mode="json"))[-1]
    'random audit'
    """
    score = alert["score"]
    reasons = score.get("reasons") or []
    if alert.get("kind") == "random_audit":
        top = "random audit"
    else:
        top = reasons[0]["text"] if reasons else "-"
    return (
        score["lodged_at"][:10],
        score["declaration_id"],
        score["importer"],
        score["commodity_code"],
        f"{score['risk']:.3f}",
        top[:60],
    )
