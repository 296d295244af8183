"""``python -m lessons COMMAND``: the lab from a terminal.

Each command is one ``_add_<name>`` function (its arguments) and one ``cmd_<name>``
function (what it does, returning the exit code), listed once in ``COMMANDS``.  To add a
command, write the two functions and add a ``Command`` line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------

def _add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="http://host:port/path (the path is loaded)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-c", "--connections", type=int, default=None,
                      help="closed loop with N connections (default 16)")
    mode.add_argument("--rate", type=float, default=None,
                      help="open loop at R requests/s (latency from the intended send time)")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="measured seconds (5)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first (1)")
    p.add_argument("--timeout", type=float, default=2.0, help="per-request timeout, s (2)")
    p.add_argument("--processes", type=int, default=1, help="load processes (1)")
    p.add_argument("--max-connections", type=int, default=None,
                   help="open loop: most connections the pool may open (256)")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra request header (repeatable)")
    p.add_argument("--label", default="", help="a name for the saved run")
    p.add_argument("--no-save", action="store_true", help="do not save under results/")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (mode, connections, rate, duration_s, requests,"
                        " rps, p50_ms, p90_ms, p99_ms, p999_ms, max_ms, errors, non_2xx, "
                        "dropped, client_cpu_pct)")


def cmd_bench(args: argparse.Namespace) -> int:
    from lessons.measure import launch as load

    headers = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise SystemExit(f"bench: a header is 'Name: value', not {h!r}")
        headers[name.strip()] = value.strip()
    kwargs = {}
    if args.max_connections is not None:
        kwargs["max_connections"] = args.max_connections
    try:
        r = load.run(args.url, connections=args.connections or 16, rate=args.rate,
                     duration=args.duration, warmup=args.warmup, timeout=args.timeout,
                     headers=headers or None, processes=args.processes, label=args.label,
                     save=not args.no_save, **kwargs)
    except ValueError as exc:
        raise SystemExit(f"bench: {exc}") from None
    if args.json:
        print(json.dumps(r.to_json_dict()))
        for w in r.warnings:
            print(f"warning: {w}", file=sys.stderr)
    else:
        print(r.summary())
    return 0


# --------------------------------------------------------------------------------------
# calibrate
# --------------------------------------------------------------------------------------

def _add_calibrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--duration", type=float, default=3.0, help="seconds per probe (3)")
    p.add_argument("--low-rate", type=float, default=200.0,
                   help="open-loop rate for the p50 overhead (200 req/s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from lessons import calibrate

    cal = calibrate.calibrate(duration=args.duration, low_rate=args.low_rate,
                              progress=not args.json)
    if args.json:
        print(json.dumps(cal.to_json_dict()))
    else:
        print(cal.report())
    return 0


# --------------------------------------------------------------------------------------
# doctor
# --------------------------------------------------------------------------------------

def _add_doctor(p: argparse.ArgumentParser) -> None:
    pass


def cmd_doctor(args: argparse.Namespace) -> int:
    from lessons import doctor

    return doctor.main()


# --------------------------------------------------------------------------------------
# serve
# --------------------------------------------------------------------------------------

def _add_serve(p: argparse.ArgumentParser) -> None:
    from lessons.profile import PRESETS, SERVER_KINDS

    p.add_argument("--preset", default="tuned", choices=list(PRESETS), help="starting profile (tuned)")
    p.add_argument("--server", default=None, metavar="KIND",
                   help=f"server kind, overriding the preset's: {', '.join(SERVER_KINDS)}")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                   help="change one knob, e.g. --set workers=2 --set middleware=none (repeatable)")
    p.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import time

    from lessons.profile import Profile, ProfileError

    try:
        profile = Profile.preset(args.preset)
        if args.server:
            profile = profile.replace(server=args.server)
        for item in args.set:
            name, sep, value = item.partition("=")
            if not sep:
                raise ProfileError(f"--set takes KNOB=VALUE, not {item!r}.")
            profile = profile.with_knob(name.strip(), value)
    except ProfileError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2

    def stderr(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)  # also when started with SIGINT ignored (a background job)
    from lessons.lab import Lab
    from lessons.server import ServerError
    from lessons.services import ServiceError

    lab = None
    try:
        lab = Lab(progress=stderr)
        server = lab.serve(profile, port=args.port)
        stderr(f"Serving {profile.describe()}; press Ctrl-C to stop.")
        print(server.url, flush=True)
        while server.running:
            time.sleep(0.5)
        stderr(f"The server exited on its own; the end of its log:\n{server.logs(20)}")
        return 1
    except (ServiceError, ServerError) as exc:
        stderr(f"serve: {exc}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if lab is not None:
            lab.close()


# --------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------

def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="notebooks to run (part of the name; default all)")
    p.add_argument("--quick", action="store_true", help="LAB_QUICK=1: the short CI-sized runs")


def cmd_run(args: argparse.Namespace) -> int:
    from lessons import runner

    return runner.run_all(args.names, quick=args.quick)


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------

def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compare", nargs="+", metavar="DIR", default=None,
                   help="results/ folders from several machines, side by side")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list, one object per claim (id, section, guide, verdict, "
                        "evidence, notebook, run, checkpoint_passed, recorded_at)")
    p.add_argument("--results", metavar="DIR", default=None,
                   help="the results folder to read (default: LAB_RESULTS or results/)")


def cmd_report(args: argparse.Namespace) -> int:
    from lessons import report

    try:
        return report.main(args.compare, as_json=args.json, results=args.results)
    except FileNotFoundError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------------------
# margins
# --------------------------------------------------------------------------------------

def _add_margins(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", metavar="DIR", default=None,
                   help="the results folder to read (default: LAB_RESULTS or results/)")
    p.add_argument("--current", action="store_true",
                   help="only the checks the newest run of each notebook made (leaves out renamed ones)")


def cmd_margins(args: argparse.Namespace) -> int:
    from lessons import report

    return report.main_margins(args.results, current=args.current)


# --------------------------------------------------------------------------------------
# locustfile
# --------------------------------------------------------------------------------------

def _add_locustfile(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="the base URL, http(s)://host[:port][/prefix]")
    p.add_argument("--path", action="append", required=True, metavar="P",
                   help="a path to GET (repeatable; requested in turn)")
    p.add_argument("--rate", type=float, default=None,
                   help="requests/s in total, paced per user (default: closed loop, 16 users)")
    p.add_argument("--slo-ms", type=float, default=10.0, help="the SLO on p99, ms (10)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the locustfile here (default: to stdout, commands to stderr)")
    p.add_argument("--workers", type=int, default=2, help="workers in the printed commands (2)")
    p.add_argument("--master-host", default="127.0.0.1",
                   help="the master's address in the printed commands (127.0.0.1)")
    p.add_argument("--run-time", type=int, default=60, help="whole seconds of load (60)")


def cmd_locustfile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lessons import locust_export

    out = Path(args.output) if args.output else None
    try:
        scenario = locust_export.Scenario(args.url.rstrip("/"), tuple(args.path), args.rate,
                                          args.slo_ms)
        commands = locust_export.describe_commands(
            scenario, str(out) if out else "locustfile.py", workers=args.workers,
            master_host=args.master_host, run_time_s=args.run_time)
        text = locust_export.write_locustfile(args.url, args.path, rate=args.rate,
                                              slo_ms=args.slo_ms, out=out)
    except (ValueError, OSError) as exc:
        print(f"locustfile: {exc}", file=sys.stderr)
        return 2
    if out is None:
        sys.stdout.write(text)
    print(commands, file=sys.stdout if out else sys.stderr)
    return 0


# --------------------------------------------------------------------------------------
# audit
# --------------------------------------------------------------------------------------

def _add_audit(p: argparse.ArgumentParser) -> None:
    from lessons.audit import cli

    cli.add_arguments(p)


def cmd_audit(args: argparse.Namespace) -> int:
    from lessons.audit import cli

    return cli.main(args)


# --------------------------------------------------------------------------------------
# The table of commands
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: list[Command] = [
    Command("bench", "load a URL (closed or open loop) and print latency percentiles",
            _add_bench, cmd_bench),
    Command("calibrate", "measure the load generator itself against a trivial server",
            _add_calibrate, cmd_calibrate),
    Command("doctor", "check that this machine can run the lab (exit 0 when it can)",
            _add_doctor, cmd_doctor),
    Command("serve", "start the services and one lab server; print its URL; run until Ctrl-C",
            _add_serve, cmd_serve),
    Command("run", "execute the notebooks headless into build/ and print a summary",
            _add_run, cmd_run),
    Command("report", "print the claims ledger from saved results (runs nothing)",
            _add_report, cmd_report),
    Command("margins", "each checkpoint check's value, threshold and smallest margin over the saved runs",
            _add_margins, cmd_margins),
    Command("locustfile", "write a locustfile of the lab's scenario and print Locust's distributed commands",
            _add_locustfile, cmd_locustfile),
    Command("audit", "the lab's checks and measurements on your own Django project (exit 1 on a "
            "high finding or a failed SLO)", _add_audit, cmd_audit),
]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m lessons",
                                 description="Django p99 Lab from the command line.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for c in COMMANDS:
        p = sub.add_parser(c.name, help=c.help, description=c.help)
        c.add_arguments(p)
        p.set_defaults(_run=c.run)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
