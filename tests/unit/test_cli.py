"""The command line as a newcomer meets it: one vocabulary, help in plain words, results
that fit, and a service that is down said in one line.

The service checks run the real ``vigie`` against ports nothing listens on: no Kafka,
Redis or ClickHouse is needed to see what happens when they are down.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigie.cli import command, output, runs
from vigie.settings import Settings
from vigie_dev.testing import free_port

VIGIE = str(Path(sys.executable).with_name("vigie"))
PYTHON_TYPES = re.compile(r"<(bool|str|int|float|path|list\[[^>]*|%[^>]*|[a-z]+ range)>")


def _commands(cli: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, cli
    for name, sub in getattr(cli, "commands", {}).items():
        yield from _commands(sub, (*path, name))


@pytest.fixture(scope="module")
def cli() -> Any:
    return command()


def test_every_help_is_in_plain_words(cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for path, _ in _commands(cli):
        cli.main([*path, "-h"], prog_name="vigie", standalone_mode=False)
        text = capsys.readouterr().out
        assert "Usage: vigie" in text, path
        assert not PYTHON_TYPES.search(text), (path, PYTHON_TYPES.search(text))
        assert "`" not in text, path


def test_help_strings_need_no_markup(cli: Any) -> None:
    for path, cmd in _commands(cli):
        for text in [cmd.help or "", *(getattr(p, "help", None) or "" for p in cmd.params)]:
            assert "`" not in text and "[" not in text, (path, text)


def test_one_name_and_one_short_option_per_idea(cli: Any) -> None:
    shorts: dict[str, set[str]] = defaultdict(set)
    longs: dict[str, set[str]] = defaultdict(set)
    for _, cmd in _commands(cli):
        for param in cmd.params:
            names = [o for o in param.opts if o.startswith("--")]
            for short in (o for o in param.opts if not o.startswith("--")):
                for name in names:
                    shorts[short].add(name)
                    longs[name].add(short)
    assert all(len(names) == 1 for names in shorts.values()), dict(shorts)
    assert all(len(s) == 1 for s in longs.values()), dict(longs)
    assert shorts["-n"] == {"--limit"} and shorts["-f"] == {"--follow"}
    assert shorts["-m"] == {"--mapping"}
    options = set(longs) | {o for _, c in _commands(cli) for p in c.params for o in p.opts}
    for old in ("--n", "--count", "--until-idle", "--web-port", "--claim-idle-ms", "--horizon"):
        assert old not in options, old


def test_readers_of_a_run_take_run(cli: Any) -> None:
    for path in (
        ("alerts", "tail"),
        ("alerts", "republish"),
        ("warehouse", "summary"),
        ("warehouse", "check"),
        ("dlq", "tail"),
        ("webhooks", "failed"),
        ("webhooks", "redrive"),
        ("web",),
    ):
        cmd = cli
        for name in path:
            cmd = cmd.commands[name]
        assert "--run" in {o for p in cmd.params for o in p.opts}, path


def test_version_and_short_help() -> None:
    done = subprocess.run([VIGIE, "--version"], capture_output=True, text=True, check=True)
    assert re.fullmatch(r"vigie \d+\.\d+\.\d+\S*\n", done.stdout)
    short = subprocess.run([VIGIE, "dlq", "-h"], capture_output=True, text=True, check=True)
    assert "Usage: vigie dlq" in short.stdout


def test_results_group_nested_objects_and_identifiers_have_no_separators(
    capsys: pytest.CaptureFixture[str],
) -> None:
    long = "x" * 300
    output.emit(
        {"pid": 123456, "declarations": 123456, "latency_ms": {"p50": 2.5}, "path": long},
        as_json=False,
        title="t",
    )
    text = capsys.readouterr().out
    assert "123456" in text and "123,456" in text
    assert "latency_ms" in text and "latency_ms.p50" not in text
    assert long in text  # a pipe is never cut
    assert max(len(line) for line in text.splitlines()) > 300


def test_run_resolves_latest_and_names_the_runs_there(tmp_path: Path) -> None:
    base = Settings(state_dir=tmp_path, topic_prefix="env.", redis_prefix="v")
    with pytest.raises(output.CommandError, match=r"no demo run in .*: run vigie demo"):
        runs.resolve(base, "latest")
    for run_id in ("20261201t100000", "20261202t100000"):
        (tmp_path / "demo" / run_id).mkdir(parents=True)
    latest = runs.resolve(base, "latest")
    assert latest.topic("alerts") == "env.demo-20261202t100000.alerts"
    assert latest.redis_prefix == "v.demo-20261202t100000"
    assert latest.state_dir == tmp_path / "demo" / "20261202t100000"
    assert runs.resolve(base, "20261201t100000").topic_prefix == "env.demo-20261201t100000."
    assert runs.resolve(base, None) is base
    with pytest.raises(output.CommandError, match=r"there is 20261201t100000, 20261202t100000"):
        runs.resolve(base, "nope")


def _down(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    closed = f"127.0.0.1:{free_port()}"
    environ = {
        "PATH": "/usr/bin:/bin",
        "VIGIE_KAFKA_BOOTSTRAP": closed,
        "VIGIE_REDIS_URL": f"redis://{closed}/0",
        "VIGIE_CLICKHOUSE_URL": f"http://vigie:secret@{closed}",
        **env,
    }
    return subprocess.run(
        [VIGIE, *argv], env=environ, capture_output=True, text=True, timeout=60, check=False
    )


KAFKA = r"^error: Kafka at 127\.0\.0\.1:\d+ does not answer: start it \(vigie stack up\) or set VIGIE_KAFKA_BOOTSTRAP\n$"  # noqa: E501
REDIS = r"^error: Redis at redis://127\.0\.0\.1:\d+/0 does not answer: start it \(vigie stack up\) or set VIGIE_REDIS_URL\n$"  # noqa: E501
CLICKHOUSE = r"^error: ClickHouse at http://vigie:\*\*\*@127\.0\.0\.1:\d+ does not answer \(Connection refused\): start it or set VIGIE_CLICKHOUSE_URL\n$"  # noqa: E501


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("topics", "create"), KAFKA),
        (("replay", "{declarations}"), KAFKA),
        (("dlq", "tail"), KAFKA),
        (("controls", "submit", "--declaration", "D-1", "--outcome", "compliant"), KAFKA),
        (("alerts", "republish", "--since", "1h"), KAFKA),
        (("worker",), KAFKA),
        (("alerts", "tail"), REDIS),
        (("alerts", "tail", "--follow"), REDIS),
        (("warehouse", "check"), CLICKHOUSE),
        (("warehouse", "migrate"), CLICKHOUSE),
        (("warehouse", "summary"), CLICKHOUSE),
        (("web",), CLICKHOUSE),
    ],
)
def test_a_service_that_is_down_is_one_line(
    argv: tuple[str, ...], expected: str, tmp_path: Path
) -> None:
    declarations = tmp_path / "d.jsonl"
    declarations.write_text("{}\n")
    args = [a.format(declarations=declarations) for a in argv]
    done = _down(*args, VIGIE_STATE_DIR=str(tmp_path / "state"))
    assert done.returncode == 1, done.stderr
    assert re.fullmatch(expected, done.stderr), done.stderr
    assert done.stdout == ""


def test_an_embedded_warehouse_held_by_another_process_is_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    hold = (
        "import clickhouse_connect, sys; "
        f"c = clickhouse_connect.get_client(dsn='chdb://{state / 'clickhouse'}'); "
        "print('holding', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        done = _down("warehouse", "summary", VIGIE_STATE_DIR=str(state), VIGIE_CLICKHOUSE_URL="")
    finally:
        holder.communicate("", timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "is held by another process" in done.stderr and "VIGIE_CLICKHOUSE_URL" in done.stderr


def test_evaluate_dead_letters_broken_lines_and_names_them(tmp_path: Path) -> None:
    from vigie_dev.generator import GeneratorConfig, write_files

    out, controls = tmp_path / "d.jsonl", tmp_path / "c.jsonl"
    write_files(GeneratorConfig(n=600, seed=3), out, controls, tmp_path / "t.jsonl")
    lines = out.read_bytes().splitlines()
    lines[9] = b'{"declaration_id": "broken"'  # line 10
    lines[19] = lines[19].replace(b'"origin":"', b'"origin":"Z', 1)  # line 20: bad country
    out.write_bytes(b"\n".join(lines) + b"\n")
    rejects = tmp_path / "rejected.jsonl"
    args = ["evaluate", str(out), "--controls", str(controls), "--rejects", str(rejects)]
    done = _down(*args, "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["n"] == 598
    assert report["rejected"] == {
        "count": 2,
        "by_reason": {"invalid_json": 1, "schema": 1},
        "file": str(rejects),
    }
    letters = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [letter["source"] for letter in letters] == [f"{out}:10", f"{out}:20"]
    assert letters[0]["value"] == '{"declaration_id": "broken"'
    assert "origin" in letters[1]["errors"][0]["loc"]


def test_evaluate_with_a_wrong_mapping_stops_with_the_first_reasons(tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("id,date,value\n1,2026-01-01,3\n2,2026-01-02,4\n")
    done = _down("evaluate", str(csv), "-m", "customs-kr", "--rejects", str(tmp_path / "r.jsonl"))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == "error: 2 of 2 records rejected, none accepted. The first:"
    assert lines[1].startswith(f"  {csv}:2: mapping: declaration_id: column 'Declaration ID'")
    assert "Wrong mapping? customs-kr does not fit these files" in done.stderr
    assert f"Every rejected record is in {tmp_path / 'r.jsonl'}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_mapping_names_its_unknown_transform(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text('[control]\noutcome = {column = "Fraud", transform = "verdict"}\n')
    done = _down("evaluate", str(mapping), "-m", str(mapping))
    assert done.returncode == 1
    assert "control field 'outcome': unknown transform 'verdict' (known: " in done.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[declaration\n")
    done = _down("evaluate", str(bad), "-m", str(bad))
    assert f"mapping {bad}: not valid TOML" in done.stderr and "line 1" in done.stderr
