"""Entry point of the `natscron` command."""

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from natscron.stack import LOG_FILE
from natscron_shared.enums import Priority
from natscron_shared.errors import BadRequestError, NatscronError
from natscron_shared.settings import Settings

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="natscron", description="Distributed scheduler for recurring scrape jobs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run everything here (embedded servers unless configured)")
    up.add_argument("--demo", action="store_true", help="add a demo site and two schedules")
    for service in ("ticker", "runner", "recorder"):
        commands.add_parser(service, help=f"run one {service} (needs NATS/Mongo URLs or `up`)")
    commands.add_parser(
        "api",
        help="run the HTTP API on NATSCRON_API_HOST:NATSCRON_API_PORT (needs NATS/Mongo URLs"
        " or `up`)",
    )
    commands.add_parser(
        "provision",
        help="create or update the JetStream streams, buckets and consumers natscron needs",
    )
    commands.add_parser(
        "asyncapi", help="print the AsyncAPI document of the message contract (YAML)"
    )
    apply = commands.add_parser("apply", help="create or update scheduled jobs from YAML")
    apply.add_argument("-f", "--file", type=Path, required=True)
    apply.add_argument(
        "--unchecked",
        action="store_true",
        help="write without checking scrapers and params against what running runners"
        " advertise (needed while no runner is up)",
    )
    trigger = commands.add_parser("trigger", help="run a scheduled job now")
    trigger.add_argument("scheduled_job_id")
    trigger.add_argument(
        "--priority", type=Priority, choices=list(Priority), default=Priority.IMMEDIATE
    )
    for action, verb in (("pause", "pause"), ("resume", "resume"), ("delete", "delete")):
        control = commands.add_parser(
            action, help=f"{verb} scheduled jobs, by id or by label selector"
        )
        control.add_argument("scheduled_job_ids", nargs="*")
        control.add_argument("--selector", help="labels to match: key=value[,key=value]")
        if action == "pause":
            control.add_argument("--reason", help="a note kept with the pause")
    retry = commands.add_parser("retry", help="run a failed or cancelled job again")
    retry.add_argument("job_id")
    cancel = commands.add_parser("cancel", help="cancel a running or queued job")
    cancel.add_argument("job_id")
    cancel.add_argument("--reason")
    jobs = commands.add_parser("jobs", help="recent runs, newest first")
    jobs.add_argument("--scheduled-job", dest="scheduled_job_id")
    jobs.add_argument("--limit", type=int, default=20)
    return parser


async def _dispatch(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "up":
        from natscron.cli.up import up

        await up(settings, demo=args.demo)
    elif args.command in ("ticker", "runner", "recorder", "api"):
        from natscron.cli.serve import serve

        await serve(args.command, settings)
    elif args.command == "asyncapi":
        from natscron.asyncapi import asyncapi_yaml

        print(asyncapi_yaml(), end="")
    elif args.command == "provision":
        from natscron.cli.provision import provision_from_settings

        await provision_from_settings(settings, lambda line: print(line, flush=True))
    elif args.command == "apply":
        from natscron.cli.apply import apply_file

        print(await apply_file(args.file, settings, unchecked=args.unchecked))
    elif args.command == "trigger":
        from natscron.cli.trigger import trigger

        print(await trigger(args.scheduled_job_id, args.priority, settings))
    elif args.command in ("pause", "resume", "delete"):
        from natscron.cli.controls import control

        reason = getattr(args, "reason", None)
        print(await control(args.command, args.scheduled_job_ids, args.selector, reason, settings))
    elif args.command == "retry":
        from natscron.cli.trigger import retry

        print(await retry(args.job_id, settings))
    elif args.command == "cancel":
        from natscron.cli.controls import cancel

        print(await cancel(args.job_id, args.reason, settings))
    else:
        from natscron.cli.jobs import recent_jobs

        print("\n".join(await recent_jobs(settings, args.scheduled_job_id, args.limit)))


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LIBRARIES = ("httpx", "httpcore")
"""They log every request at INFO; the runner reports failed fetches itself."""


def _configure_logging(settings: Settings, command: str) -> None:
    """`up` keeps the terminal for the runs: service logs go to `<data_dir>/natscron.log`
    and only warnings to the terminal. A single service logs to stderr, as containers do."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    if command != "up":
        logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(settings.data_dir / LOG_FILE)
    to_terminal = logging.StreamHandler()
    to_terminal.setLevel(logging.WARNING)
    logging.basicConfig(
        level=settings.log_level.upper(), format=LOG_FORMAT, handlers=[to_file, to_terminal]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"natscron: bad NATSCRON_* setting:\n{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _configure_logging(settings, args.command)
    try:
        asyncio.run(_dispatch(args, settings))
    except BadRequestError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    except NatscronError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
