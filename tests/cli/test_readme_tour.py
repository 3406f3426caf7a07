"""The README's two tours, run as written against a demo stack (`natscron up --demo`, as
`make demo` starts it): every command of "A tour of the command line" and of "The API" exits
0, and no `curl` of them gets an error answer. The placeholders are filled as a reader fills
them, from what earlier commands printed: `<cursor>` from a listing's next-page line,
`<job_id>` from `natscron trigger` (or, for `cancel` and `retry`, a run the test keeps
running), `<port>` from the services' log; `$API` is the URL `up` printed. The `nats req`
lines are sent as the `nats` CLI would, by a NATS client."""

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest

from natscron.demo import listing_params
from natscron.embedded import free_port
from natscron.stack import ENDPOINTS_FILE
from tests.cli.test_cli import cli_env
from tests.cli.test_up import Up, running_up
from tests.waiting import eventually

pytestmark = pytest.mark.integration

README = Path(__file__).parents[2] / "README.md"
CLI_TOUR, API_TOUR = "## A tour of the command line", "## The API"
COMMAND_SECONDS = 60.0
ERROR_HEADER = "Nats-Service-Error-Code"


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[str]:
    """One line per command, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line for line in joined.splitlines() if line.strip()]


class Tours:
    def __init__(self) -> None:
        text = README.read_text()
        cli, api = section(text, CLI_TOUR), section(text, API_TOUR)
        [cli_block] = blocks(cli, "sh")
        # The first is the file the tour applies; later ones show single fields (chains).
        self.schedule_file = blocks(cli, "yaml")[0]
        curl_block, nats_block = blocks(api, "sh")
        self.cli = commands(cli_block)
        self.api = commands(curl_block)
        self.nats = commands(nats_block)


@asynccontextmanager
async def hanging_site() -> AsyncIterator[str]:
    """A site that has no robots.txt and never answers for a page: a scrape of it runs
    until cancelled (polite fetching reads robots.txt first, so that must answer). Closed at
    the end, which ends whatever still waits on it."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = await reader.readline()
        if b" /robots.txt " in request_line:
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            writer.close()
            return
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in held:
            writer.transport.abort()


class Reader:
    """Runs the tours' lines in the demo's folder, as a reader in a second terminal."""

    def __init__(self, folder: Path, up: Up) -> None:
        self.folder = folder
        self.env = cli_env(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        self.up = up

    async def run(self, line: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            line,
            cwd=self.folder,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), COMMAND_SECONDS)
        assert process.returncode is not None
        return process.returncode, out.decode()

    async def ok(self, line: str) -> str:
        code, out = await self.run(line)
        assert code == 0, f"{line}\nexited {code}:\n{out}\n{self.up.output.read_text()[-2000:]}"
        return out

    async def job(self, job_id: str) -> dict[str, object]:
        code, out = await self.run(f"natscron jobs get {job_id} -o json")
        return json.loads(out) if code == 0 else {}

    async def job_in(self, job_id: str, *statuses: str) -> None:
        await eventually(
            lambda: self.job(job_id),
            lambda job: job.get("status") in statuses,
            within=30,
            what=f"{job_id} {' or '.join(statuses)}",
        )

    async def next_page_cursor(self) -> str:
        """From a listing's last line, as a reader copies it."""
        out = await self.ok("natscron jobs list --limit 1")
        command = out.splitlines()[-1].split("next page: ", 1)[1]
        assert command.startswith("natscron jobs list --limit 1 --cursor ")
        return command.rsplit(" ", 1)[1]


def metrics_ports(log: str) -> list[tuple[str, int]]:
    found = re.findall(r"health and metrics on http://([^:]+):(\d+)/metrics", log)
    return [(host, int(port)) for host, port in found]


async def test_every_command_of_both_tours_works_as_written(tmp_path: Path) -> None:
    tours = Tours()
    (tmp_path / "schedules.yaml").write_text(tours.schedule_file)
    settings = {"NATSCRON_API_PORT": str(free_port()), "NATSCRON_SHUTDOWN_GRACE_SECONDS": "2"}
    async with hanging_site() as hanging, running_up(tmp_path, "--demo", **settings) as up:
        reader = Reader(tmp_path, up)

        async def printed_urls() -> list[str]:
            return re.findall(r"API on (\S+) ", up.output.read_text())

        [api_url] = await eventually(printed_urls, what="the API's URL")
        await eventually(
            lambda: reader.run("natscron jobs --limit 2 -o json"),
            lambda answer: answer[0] == 0 and json.loads(answer[1])["total"] >= 2,
            within=60,
            what="two runs of the demo recorded",
        )
        endpoints = json.loads((tmp_path / ".natscron" / ENDPOINTS_FILE).read_text())
        nc = await nats.connect(endpoints["nats_url"])
        try:
            params = listing_params(hanging, "austin-tx") | {"request_timeout_seconds": 300}
            adhoc = {"scraper": "http", "params": params, "priority": "immediate"}
            reply = await nc.request("natscron.api.trigger", json.dumps(adhoc).encode(), 15)
            slow = json.loads(reply.data)["job_id"]
            await reader.job_in(slow, "running")

            triggered = ""
            for line in tours.cli:
                if "<cursor>" in line:
                    line = line.replace("<cursor>", await reader.next_page_cursor())
                if "jobs get <job_id>" in line:
                    await reader.job_in(triggered, "pending", "running", "completed")
                    line = line.replace("<job_id>", triggered)
                if "jobs retry <job_id>" in line:
                    await reader.job_in(slow, "cancelled")
                line = line.replace("<job_id>", slow)
                if "<port>" in line:
                    log = (tmp_path / ".natscron" / "natscron.log").read_text()
                    line = line.replace("<port>", str(metrics_ports(log)[0][1]))
                out = await reader.ok(line)
                if line.startswith("natscron trigger demo-denver-for-rent"):
                    triggered = out.split()[0]
                if line.startswith(f"natscron jobs cancel {slow}"):
                    assert out.startswith(f"{slow} running:"), out

            reader.env["API"] = api_url
            for line in tours.api:
                if line.startswith("API="):
                    continue
                out = await reader.ok(line)
                assert '"error"' not in out, f"{line}\n{out}"

            for line in tours.nats:
                program, verb, subject, body = shlex.split(line.split(" #")[0])
                assert (program, verb) == ("nats", "req"), line
                answer = await nc.request(subject, body.encode(), 15)
                assert not (answer.headers or {}).get(ERROR_HEADER), answer.data
        finally:
            await nc.close()

    log = (tmp_path / ".natscron" / "natscron.log").read_text()
    hosts = {host for host, _ in metrics_ports(log)}
    assert hosts == {"127.0.0.1"}, "up's services listen on this machine only"
