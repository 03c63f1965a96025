"""The demo's summary as people read it: a few grouped lines, what the figures mean, and
the exact commands that explore the run next.

>>> lines = next_commands("20261204t101500", {"url": "http://127.0.0.1:8080", "pid": 4242})
>>> print("\\n".join(lines))
vigie alerts tail --run 20261204t101500
vigie warehouse summary --run 20261204t101500
vigie dlq tail --run 20261204t101500
vigie webhooks failed --run 20261204t101500
open http://127.0.0.1:8080 (the accounts below); stop it with: kill 4242
>>> eur(5_780_000.0), eur(812.4), share(0.0512), ms(0.104), ms(812.0), ms(27_412.0)
('EUR 5.78 M', 'EUR 812', '5.1 %', '0.10 ms', '812 ms', '27.4 s')
"""

from __future__ import annotations

from typing import Any


def eur(value: float) -> str:
    """An amount in euros, as people say it."""
    if abs(value) >= 1e6:
        return f"EUR {value / 1e6:,.2f} M"
    return f"EUR {value:,.0f}"


def share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def ms(value: float | None) -> str:
    """Milliseconds, in seconds once they are many."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:,.1f} s"
    return f"{value:.2f} ms" if value < 10 else f"{value:,.0f} ms"


def next_commands(run_id: str, web: dict[str, Any] | None) -> list[str]:
    """What to run next to look at this run (each command reads the run by its id)."""
    lines = [
        f"vigie {command} --run {run_id}"
        for command in ("alerts tail", "warehouse summary", "dlq tail", "webhooks failed")
    ]
    if web:
        lines.append(f"open {web['url']} (the accounts below); stop it with: kill {web['pid']}")
    return lines


def summary_lines(s: dict[str, Any]) -> list[str]:
    """The summary, grouped, with what its figures measure (rich markup)."""
    run, traffic, truth = s["run"], s["traffic"], s["detection"]
    target, delivery, lat = s["targeting"], s["delivery"], s["latency"]
    at_risk, on_alerts = target["duty_at_risk"], target["controls_on_alerts"]
    caught = (
        truth["duty_gap_alerted_eur"] / truth["duty_gap_eur"] if truth["duty_gap_eur"] else None
    )
    consistent = (
        "consistent" if all(delivery["consistent"].values()) else "[red]NOT consistent[/red]"
    )
    hooks = delivery["webhooks"]
    return [
        f"[bold]Demo run {run['id']}[/bold]: {traffic['declarations_produced']:,} declarations "
        f"end to end in {s['seconds']:,.0f} s",
        "",
        "[bold]Traffic[/bold]",
        f"  declarations   {traffic['declarations_produced']:,} produced, "
        f"{traffic['declarations']:,} stored, {traffic['scores']:,} scored; "
        f"{traffic['dead_letters']:,} dead letters",
        f"  controls       {traffic['controls_produced']:,} inspection results replayed, "
        f"{traffic['controls']:,} stored",
        "[bold]Detection, against the generator's truth[/bold]",
        f"  frauds         {truth['frauds']:,} in the traffic, "
        f"{truth['frauds_alerted']:,} alerted: {share(truth['precision'])} of the alerts are "
        f"frauds (precision), {share(truth['recall'])} of the frauds are alerted (recall)",
        f"  duty gap       {eur(truth['duty_gap_eur'])} evaded by the frauds (the truth), "
        f"{eur(truth['duty_gap_alerted_eur'])} of it alerted ({share(caught)})",
        "[bold]Targeting[/bold]",
        f"  alerts         {target['alerts']:,} ({share(target['alert_rate'])} of declarations, "
        f"budget {share(target['budget'])}): {target['risk_alerts']:,} on risk, "
        f"{target['random_audits']:,} random audits (drawn whatever the risk)",
        f"  controls       {on_alerts['controls']:,} alerted declarations were inspected, "
        f"{on_alerts['hits']:,} hits; {eur(target['recovered_eur'])} recovered by all controls",
        f"  duty at risk   {eur(at_risk['total_eur'])}, the engine's estimate over every "
        "declaration (duty on the gap to the reference price):",
        f"                 {eur(at_risk['on_frauds_eur'])} on the frauds, "
        f"{eur(at_risk['on_honest_eur'])} on {at_risk['honest_declarations']:,} honest "
        "declarations priced under the reference (a median), hence more than the duty gap",
        "[bold]Delivery[/bold]",
        f"  alerts         {delivery['alerts_warehouse']:,} in ClickHouse, "
        f"{delivery['alerts_redis']:,} in Redis, {hooks['alerts_delivered']:,} by signed "
        f"webhook: {consistent}",
        "[bold]Latency[/bold]",
        *latency_lines(lat),
    ]


def latency_lines(lat: dict[str, Any]) -> list[str]:
    """The worker's own time, then production to Score and to Redis, with what they say."""
    scoring, to_score, to_redis = lat["scoring_ms"], lat["produced_to_score_ms"], lat[
        "produced_to_redis_ms"]  # fmt: skip
    lines = [
        f"  scoring        p50 {ms(scoring['p50'])}, p99 {ms(scoring['p99'])} per declaration, "
        "in the worker",
        f"  to Score       p50 {ms(to_score['p50'])}, p99 {ms(to_score['p99'])} from production "
        f"to Score in Kafka; to Redis p50 {ms(to_redis['p50'])}, p99 {ms(to_redis['p99'])}",
    ]
    rates = f"the replay produced {lat['replay_per_s'] or 0:,.0f}/s, the worker scored " + (
        f"{lat['worker_per_s']:,.0f}/s" if lat["worker_per_s"] else "-"
    )
    if lat["queueing"]:
        lines.append(
            f"                 {rates}: that is time in the queue, not the engine's; "
            "vigie bench --only latency measures it at a rate the worker keeps up with"
        )
    else:
        lines.append(f"                 {rates}: the worker kept up")
    return lines
