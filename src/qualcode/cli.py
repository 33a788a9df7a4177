"""The ``qualcode`` command: a thin layer over the flows and the library."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from .outputs import EVALUATION_CSV, SCORES_CSV, SEGMENTS_CSV
from .parallel import MAX_AUTO_WORKERS
from .segment import DEFAULT_MAX_TURN_CHARS
from .speakers import DEFAULT_INTERVIEWER_LABELS


def _version() -> str:
    try:
        return metadata.version("qualcode")
    except metadata.PackageNotFoundError:
        return "unknown"


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="corpus", help="corpus folder (default: corpus)")
    parser.add_argument("--codebook", default="codebook.yaml",
                        help="codebook file (default: codebook.yaml)")
    parser.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    parser.add_argument("--batch-size", type=_at_least(1), default=None,
                        help="about this many files per Prefect task (default: about "
                             "500, more when files are shorter than 4 KB; a batch's "
                             "files are shared among the worker processes)")
    parser.add_argument(
        "--interviewer-labels", default=",".join(DEFAULT_INTERVIEWER_LABELS),
        help="comma-separated speaker labels kept as context and not coded "
             f"(default: {','.join(DEFAULT_INTERVIEWER_LABELS)})",
    )
    parser.add_argument("--max-turn-chars", type=_at_least(100),
                        default=DEFAULT_MAX_TURN_CHARS,
                        help="split longer turns at paragraph breaks "
                             f"(default: {DEFAULT_MAX_TURN_CHARS})")
    _add_backend(parser)


def _add_scale_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=None,
                        help="batches processed at once on this machine; with the fast "
                             "backend, reading and scoring run in that many processes "
                             "(default: one per core, at most "
                             f"{MAX_AUTO_WORKERS}, with the fast backend; 1 with the "
                             "semantic backend, whose encoder already uses every core)")
    parser.add_argument("--dask-address", default=None, metavar="tcp://HOST:PORT",
                        help="run the batches on this existing Dask cluster (needs the dask "
                             "extra; the cluster must see the corpus and output folders at "
                             "the same paths)")


def _use_project_server(start: bool = False) -> str | None:
    """Point Prefect at the project's server (``PREFECT_API_URL``) when it runs, or start
    it when ``start``; a ``PREFECT_API_URL`` set by the user (a team server) wins."""
    from . import server

    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    info = server.status(wait=10.0)  # a busy server may answer late
    if info is None and start:
        print("Starting the project's Prefect server (qualcode server start) ...", flush=True)
        info, _ = server.start()
    if info is None:
        if (silent := server.not_answering()) is not None:
            # not a temporary server beside it: two servers on one database
            raise server.ServerError(
                f"the project's Prefect server (pid {silent.pid}) does not answer on "
                f"{silent.url} (see {Path(silent.home) / server.LOG_FILE}) — stop it with "
                "`qualcode server stop` and try again")
        return None
    os.environ["PREFECT_API_URL"] = info.api_url
    return info.api_url


def _out_problem(out: str, corpus: str) -> str | None:
    """Why ``out`` cannot take a run's outputs, before Prefect starts: it is a file, cannot
    be created or written, or lies inside the corpus (its outputs would be read back in as
    documents)."""
    path, root = Path(out).resolve(), Path(corpus).resolve()
    if path == root or path.is_relative_to(root):
        return (f"the output folder '{out}' is inside the corpus folder '{corpus}', so the "
                "next run would read its outputs as documents — choose a folder outside it, "
                "e.g. --out outputs")
    if path.exists() and not path.is_dir():
        return f"--out '{out}' is a file, not a folder — give a folder for the outputs"
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return (f"the output folder '{out}' cannot be written (no permission in "
                f"'{existing}') — choose a folder you may write to")
    return None


def _corpus_problem(corpus: str) -> str | None:
    """Why ``corpus`` is no corpus folder: it does not exist or is a file."""
    path = Path(corpus)
    if path.is_dir():
        return None
    what = "is a file, not a folder" if path.exists() else "does not exist"
    return (f"corpus folder '{corpus}' {what} — pass --corpus with the folder that holds "
            "your transcripts")


def _api_problem(url: str, timeout: float = 10.0) -> str | None:
    """Why no Prefect server answers at ``url`` (``PREFECT_API_URL``): Prefect itself would
    print a page of traceback, after retrying."""
    import ssl
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout):
            return None
    except urllib.error.HTTPError:  # something answers (a login, a proxy): Prefect's turn
        return None
    except ValueError:
        return (f"PREFECT_API_URL={url} is not the address of a Prefect server — write "
                "http://HOST:PORT/api, e.g. http://127.0.0.1:4200/api")
    except OSError as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, ssl.SSLError):  # Prefect may trust other certificates
            return None
        reason = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return (f"no Prefect server answers at PREFECT_API_URL={url} ({reason}) — start that "
            "server, or unset PREFECT_API_URL (qualcode then uses the project's server, "
            "`qualcode server start`, or a temporary one)")


def _prefect_problem() -> str | None:
    """Why Prefect cannot record a run: the server that ``PREFECT_API_URL`` names does not
    answer or, with none set, Prefect cannot keep its database in its home folder
    (``PREFECT_HOME``, else ``./.prefect``): its temporary server would wait minutes for
    the database, then fail with a traceback."""
    from . import server

    if os.environ.get("PREFECT_API_URL"):
        return _api_problem(os.environ["PREFECT_API_URL"])
    home = server.prefect_home()
    existing = next((p for p in (home, *home.parents) if p.exists()), None)
    if existing is not None and existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return None
    if os.environ.get("PREFECT_HOME"):
        return (f"Prefect's folder PREFECT_HOME='{home}' cannot be written — set "
                "PREFECT_HOME to a folder you may write to, or unset it (Prefect then uses "
                ".prefect in the folder you run qualcode from)")
    return (f"Prefect's folder '{home}' cannot be written — run qualcode from a folder you "
            "may write to (the project folder), or set PREFECT_HOME to one")


def _holding_outputs(out: str, command: Callable[[], int]) -> int:
    """``command()`` run holding ``out``'s lock (taken before Prefect starts): a second run,
    train or report on the same outputs is refused at once with one line, exit 2."""
    from .outputs import OutputsBusy, outputs_lock

    try:
        with outputs_lock(out):
            return command()
    except OutputsBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _dask_problem(address: str | None, timeout: float = 10.0) -> str | None:
    """Why no Dask scheduler answers at ``address`` (``tcp://host:port``, ``tls://...`` or
    ``host:port``); other transports are left to Dask."""
    if not address:
        return None
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp", "tls"):
        return None
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        return (f"--dask-address '{address}' is not the address of a Dask scheduler — "
                "write tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        return (f"no Dask scheduler answers at '{address}' ({reason}) — start it "
                "(`dask scheduler`) or check --dask-address")
    return None


def _labels(text: str) -> list[str]:
    """The labels of an ``--interviewer-labels`` value."""
    return [label.strip() for label in text.split(",") if label.strip()]


def _labels_problem(args: argparse.Namespace) -> str | None:
    if args.interviewer_labels is None or _labels(args.interviewer_labels):
        return None
    return ("--interviewer-labels names no label — give the interviewers' labels, "
            f"comma-separated (default: {','.join(DEFAULT_INTERVIEWER_LABELS)})")


def _timezone_problem(timezone: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return (f"--timezone '{timezone}' is not a time zone — give one such as "
                "'Europe/Berlin', 'America/New_York' or 'UTC'")
    return None


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{value}' is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {number}")
        return number
    return parse


def _port(value: str) -> int:
    """An argparse type: a TCP port number."""
    number = _at_least(1)(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, not {number}")
    return number


def _add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", choices=("fast", "semantic"), default=None,
        help="fast: rules + word features; semantic: sentence embeddings (default: semantic "
             "when installed)",
    )


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="corpus", help="corpus folder (default: corpus)")
    parser.add_argument("--codebook", default="codebook.yaml",
                        help="codebook file (default: codebook.yaml)")
    parser.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    parser.add_argument("--reviews", default=None,
                        help="review sheets: a folder or one CSV (default: CORPUS/reviews)")
    parser.add_argument("--folds", type=_at_least(2), default=5,
                        help="cross-validation folds, grouped by document (default: 5)")
    parser.add_argument("--interviewer-labels", default=None,
                        help="as for run (default: those of the last run in OUT, else "
                             f"{','.join(DEFAULT_INTERVIEWER_LABELS)})")
    parser.add_argument("--max-turn-chars", type=_at_least(100), default=None,
                        help="as for run (default: that of the last run in OUT, else "
                             f"{DEFAULT_MAX_TURN_CHARS})")
    _add_backend(parser)


def _add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="corpus", help="corpus folder (default: corpus)")
    parser.add_argument("--codebook", default="codebook.yaml",
                        help="codebook file (default: codebook.yaml)")
    parser.add_argument("--out", default="outputs",
                        help="folder of the coded run (default: outputs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qualcode",
        description="Code interview transcripts and literature excerpts with a codebook.",
    )
    parser.add_argument("--version", action="version", version=f"qualcode {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the main flow: ingest, segment, code, write outputs")
    _add_run_options(run)
    _add_scale_options(run)

    schedule = commands.add_parser(
        "schedule", help="serve the main flow on a cron schedule (starts or reuses the "
                         "project's Prefect server; runs until stopped)")
    schedule.add_argument("--cron", required=True,
                          help='cron expression, e.g. "0 2 * * *" for 02:00 every night')
    schedule.add_argument("--name", default="nightly",
                          help="deployment name (default: nightly)")
    schedule.add_argument("--timezone", default=None,
                          help="IANA time zone of the cron expression, e.g. Europe/Paris "
                               "(default: this machine's, else UTC)")
    _add_run_options(schedule)
    _add_scale_options(schedule)

    server = commands.add_parser(
        "server", help="the project's Prefect server (run history, schedules, UI)")
    server.add_argument("action", choices=("start", "stop", "status"))
    server.add_argument("--port", type=_port, default=None,
                        help="port on 127.0.0.1 for start (default: a free one)")

    train = commands.add_parser(
        "train", help="evaluate, then train the classifier on all reviews and save it")
    _add_training_options(train)
    evaluate = commands.add_parser(
        "evaluate", help="cross-validate the classifier against the coders' reviews")
    _add_training_options(evaluate)

    report = commands.add_parser(
        "report", help="regenerate the reports from existing coded outputs, without recoding")
    report.add_argument("--out", default="outputs",
                        help="folder with the coded outputs (default: outputs)")
    report.add_argument("--codebook", default="codebook.yaml",
                        help="codebook file (default: codebook.yaml)")

    review = commands.add_parser("review", help="review sheets for coders")
    review_commands = review.add_subparsers(dest="review_command", required=True,
                                            metavar="SUBCOMMAND")
    export = review_commands.add_parser(
        "export", help="write a review sheet (.xlsx and .csv) under OUT/review/")
    export.add_argument("--strategy", choices=("uncertain", "random", "stratified", "all"),
                        default="uncertain",
                        help="uncertain: closest to a decision threshold first (default); "
                             "random: an unbiased sample for reliability; stratified: every "
                             "code covered; all: every segment")
    export.add_argument("--n", type=int, default=50, help="segments in the sheet (default 50)")
    export.add_argument("--coder", default="", help="coder name to prefill")
    export.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    export.add_argument("--include-reviewed", action="store_true",
                        help="also offer segments that were already reviewed")
    export.add_argument("--blank", action="store_true",
                        help="leave the codes column empty (independent second coding)")
    _add_paths(export)
    importer = review_commands.add_parser(
        "import", help="check sheets and append their decisions to CORPUS/reviews/<coder>.csv")
    importer.add_argument("files", nargs="+", help="filled-in sheets (.xlsx or .csv)")
    importer.add_argument("--coder", default=None,
                          help="coder name for rows whose coder cell is empty")
    _add_paths(importer)
    disagreements = review_commands.add_parser(
        "disagreements", help="export segments where coders disagree, for an adjudicator")
    _add_paths(disagreements)

    agreement = commands.add_parser(
        "agreement", help="inter-coder reliability per code (works on review files alone)")
    agreement.add_argument("files", nargs="*",
                           help="review files (default: CORPUS/reviews/*.csv)")
    agreement.add_argument("--corpus", default="corpus", help="corpus folder (default: corpus)")
    agreement.add_argument("--codebook", default="codebook.yaml",
                           help="codebook file (default: codebook.yaml)")
    agreement.add_argument("--out", default="outputs",
                           help="where reliability.csv goes; the classifier is compared too "
                                "when OUT holds a coded run (default: outputs)")

    codebook = commands.add_parser("codebook", help="work with the codebook")
    codebook_commands = codebook.add_subparsers(dest="codebook_command", required=True,
                                                metavar="SUBCOMMAND")
    check = codebook_commands.add_parser("check", help="validate a codebook and summarise it")
    check.add_argument("file", nargs="?", default="codebook.yaml")
    return parser


def _where(entry: dict[str, Any]) -> str:
    return entry["path"] + (f":{entry['line']}" if entry.get("line") else "")


def _print_summary(summary: dict[str, Any], out: str) -> None:
    counts = summary["counts"]
    print()
    # (the flow's time to read and code; writing the outputs comes after it)
    print(f"qualcode run {summary['run_id']}: read and coded in {summary['seconds']:.1f} s")
    print(f"  files          {counts['files']}")
    print(f"  documents      {counts['documents']}")
    print(f"  segments       {counts['segments']} ({counts['codable_segments']} to code)")
    print(f"  skipped        {counts['skipped']}")
    for entry in summary["skipped"]:
        print(f"    - {_where(entry)}: {entry['reason']}")
    notes = summary.get("notes") or []
    if notes:
        print(f"  notes          {len(notes)} (files that were read, with something to check)")
        for entry in notes:
            print(f"    - {_where(entry)}: {entry['reason']}")
    problems = summary.get("review_problems") or []
    if problems:
        print(f"  review problems {len(problems)} (rows of the review files left out)")
        for entry in problems[:20]:
            print(f"    - {_where(entry)}: {entry['reason']}")
        if len(problems) > 20:
            print(f"    ... and {len(problems) - 20} more in run_manifest.json")
    print(f"  outputs        {Path(out).resolve()}")
    for name in summary["outputs"]:
        print(f"    {name}")
    # the model and its evaluation: beside the datasets, not in the manifest's list
    for name in (EVALUATION_CSV, "model/"):
        if (Path(out) / name).exists():
            print(f"    {name}")
    print(f"  provenance     {Path(out).resolve() / 'run_manifest.json'}")


def cmd_run(args: argparse.Namespace) -> int:
    from .codebook import check_codebook, codebook_warnings, load_codebook

    status, report = check_codebook(args.codebook)
    if status:
        print(report, file=sys.stderr)
        print(f"\nThe run was not started and {args.out}/ is untouched: fix the codebook "
              "first.", file=sys.stderr)
        return status
    for warning in codebook_warnings(load_codebook(args.codebook)):
        print(warning, file=sys.stderr)
    if args.workers is not None and args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    problem = (_corpus_problem(args.corpus) or _labels_problem(args)
               or _out_problem(args.out, args.corpus)
               or _prefect_problem() or _dask_problem(args.dask_address))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return _holding_outputs(args.out, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    # A Dask cluster's workers report to the API: without a server each would start a
    # temporary one of its own.
    from . import server

    try:
        api = _use_project_server(start=bool(args.dask_address))
    except server.ServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if api:
        print(f"Starting the Prefect flow 'code-corpus', recorded by the Prefect server at "
              f"{api.removesuffix('/api')} ...", flush=True)
    else:
        first = "" if (server.prefect_home() / "prefect.db").exists() else (
            " (the first run sets up Prefect's local database and takes a little longer)")
        print(f"Starting the Prefect flow 'code-corpus'{first} ...", flush=True)
    from flows import in_process_run
    from flows.code_corpus import code_corpus  # imports Prefect, configured for privacy

    with in_process_run():
        summary = code_corpus(**_flow_parameters(args))
    _print_summary(summary, args.out)
    _print_incremental(summary)
    print(f"  wall time      {time.perf_counter() - t0:.1f} s (incl. Prefect start-up)")
    if summary.get("failed_batches"):  # a scheduler or script must notice
        print("\nSome batches failed (FAILED above): the outputs hold everything else; exit "
              "status 1.", file=sys.stderr)
        return 1
    return 0


def _print_incremental(summary: dict[str, Any]) -> None:
    done = summary.get("incremental") or {}
    if done:
        print(f"  incremental    {done['files_read']} files read and "
              f"{done['segments_scored']} segments scored; {done['files_reused']} files "
              "unchanged since an earlier run" + ("" if done.get("outputs_rewritten", True)
                                                  else "; outputs already up to date"))
    for failure in summary.get("failed_batches") or []:
        print(f"  FAILED         {failure['task']} on {len(failure['files'])} file(s): "
              f"{failure['error']} (listed as skipped; the next run tries them again)")


def _flow_parameters(args: argparse.Namespace, absolute: bool = False) -> dict[str, Any]:
    labels = _labels(args.interviewer_labels)
    where = (lambda p: str(Path(p).resolve())) if absolute else str
    parameters: dict[str, Any] = {
        "corpus": where(args.corpus),
        "codebook": where(args.codebook),
        "out": where(args.out),
        "backend": args.backend,
        "batch_size": args.batch_size,
        "interviewer_labels": labels,
        "max_turn_chars": args.max_turn_chars,
        "workers": args.workers,
    }
    if args.dask_address:
        parameters["dask_address"] = args.dask_address
    return parameters


def _local_timezone() -> str:
    """This machine's IANA time zone name, else ``UTC``."""
    if os.environ.get("TZ", "").strip(":"):
        return os.environ["TZ"].strip(":")
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return "UTC"
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else "UTC"


def cmd_schedule(args: argparse.Namespace) -> int:
    from . import server
    from .codebook import check_codebook

    status, report = check_codebook(args.codebook)
    if status:
        print(report, file=sys.stderr)
        return status
    timezone = args.timezone or _local_timezone()
    problem = (_corpus_problem(args.corpus) or _labels_problem(args)
               or _out_problem(args.out, args.corpus) or _timezone_problem(timezone)
               or _prefect_problem() or _dask_problem(args.dask_address))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from flows.deployments import (  # imports Prefect
        cron_schedule,
        serve_code_corpus,
        served_elsewhere,
    )

    try:  # before the server starts: a typo must not leave one running
        schedule = cron_schedule(args.cron, timezone)
    except ValueError as err:  # pydantic's ValidationError is one
        reason = str(err).splitlines()[-1].strip() if str(err) else type(err).__name__
        print(f"error: --cron '{args.cron}' is not a valid cron schedule ({reason}) — write "
              "five fields, minute hour day month weekday, e.g. '0 2 * * *' for 2:00 every "
              "night", file=sys.stderr)
        return 2
    ours = not os.environ.get("PREFECT_API_URL")  # else the user's server (a team's)
    try:
        api = _use_project_server(start=True) or ""
    except server.ServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if (age := served_elsewhere(args.name, api)) is not None:
        print(f"error: 'code-corpus/{args.name}' is being served by another `qualcode "
              f"schedule` (it asked for runs {age:.0f} s ago); serving it twice would replace "
              "that one's schedule and settings — stop it first (Ctrl-C where it runs), or "
              "choose another --name. (If it has ended, try again in half a minute.)",
              file=sys.stderr)
        return 2
    parameters = _flow_parameters(args, absolute=True)
    ui = api.removesuffix("/api")
    print(f"Serving 'code-corpus/{args.name}' on cron '{args.cron}' ({timezone}) for\n"
          f"  corpus {parameters['corpus']}\n  outputs {parameters['out']}\n"
          f"Watch runs and artifacts at {ui} . Stop with Ctrl-C (the schedule is paused; "
          "`qualcode server stop` stops the server).", flush=True)
    info = server.status() if ours else None
    if info is not None:
        _stop_serving_without(info, args.name)
    try:
        serve_code_corpus(args.name, schedule, parameters, api)
    except BaseException:
        # Prefect's serve loop may fail on the dead server (its event stream) before the
        # watcher sees it: say why all the same.
        if info is not None and not server.still_running(info):
            _server_gone(info, args.name)
            return 1
        raise
    print(f"\nStopped serving 'code-corpus/{args.name}': its schedule is paused until "
          "`qualcode schedule` runs again; any run in progress was cancelled (the outputs stay "
          "those of the last complete run). The Prefect server still runs (`qualcode server "
          "stop` stops it).", flush=True)
    return 0


def _stop_serving_without(info: Any, name: str, every: float = 5.0) -> None:
    """Watch the project server from a thread; when it has gone (`qualcode server stop`,
    a crash), end this command at once with status 1 and say so. Prefect would go on
    asking a dead address for runs without a word (a restarted server has another port),
    and on Ctrl-C retry pausing the schedule there for a minute, then print a traceback."""
    from . import server

    def watch() -> None:
        while server.still_running(info):
            time.sleep(every)
        _server_gone(info, name)
        os._exit(1)

    threading.Thread(target=watch, name="qualcode-server-watch", daemon=True).start()


_GONE = threading.Lock()  # the watcher's thread or the serve loop's: the first says it
_gone_said = False


def _server_gone(info: Any, name: str) -> None:
    """Say that the project server has gone (once) and stop the flow runs in progress."""
    global _gone_said
    from . import server

    with _GONE:
        if _gone_said:
            return
        _gone_said = True
        print(f"\nerror: the project's Prefect server ({info.url}, pid {info.pid}) has "
              "stopped (`qualcode server stop`, or it failed: see "
              f"{Path(info.home) / server.LOG_FILE}), so no scheduled run can start: "
              f"stopped serving 'code-corpus/{name}'. Run `qualcode schedule` again (it "
              "starts the server); a run in progress was stopped, the outputs stay those "
              "of the last complete run.", file=sys.stderr, flush=True)
        _end_child_processes()


def _end_child_processes(timeout: float = 10.0) -> None:
    """Stop the flow runs this process started (they stop their own worker processes)."""
    import multiprocessing

    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()


def cmd_server(args: argparse.Namespace) -> int:
    from . import server

    home = server.prefect_home()
    if args.action == "status":
        info = server.status(home, wait=5.0)
        if info is None:
            if (silent := server.not_answering(home)) is not None:
                print(f"a Prefect server for this project (pid {silent.pid}) is running but "
                      f"does not answer on {silent.url} — see {home / server.LOG_FILE}; "
                      "`qualcode server stop` stops it")
                return 1
            print(f"no Prefect server is running for this project (home: {home})")
            return 3
        print(f"Prefect server running: pid {info.pid}, UI {info.url}, API {info.api_url}\n"
              f"  home {info.home}, started {info.started}, log {home / server.LOG_FILE}")
        sys.stdout.flush()
        from flows.deployments import overview  # imports Prefect

        try:
            print("\n".join(overview(info.api_url)))
        except Exception as err:  # the status line above is the answer; this is extra
            print(f"  (deployments and runs could not be read: {type(err).__name__})")
        return 0
    if args.action == "stop":
        info = server.stop(home)
        print(f"stopped the Prefect server (pid {info.pid})" if info else
              f"no Prefect server was running for this project (home: {home})")
        return 0
    try:
        info, started = server.start(home, port=args.port)
    except server.ServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(("started" if started else "already running:") + f" Prefect server at {info.url} "
          f"(pid {info.pid}, home {info.home})\n`qualcode run` and `qualcode schedule` use it "
          "while it runs; `qualcode server stop` stops it.")
    return 0


def _reviews_problem(reviews: str | None) -> str | None:
    """Why ``--reviews`` cannot be read: it names nothing (a typo would train on no reviews
    and replace the saved model)."""
    if reviews is None:
        return None
    try:
        if Path(reviews).exists():
            return None
    except OSError:  # cannot be looked at: load_reviews reports why
        return None
    return (f"--reviews '{reviews}' does not exist — give the folder of review files or one "
            "review .csv (default: CORPUS/reviews)")


def _check_first(args: argparse.Namespace) -> int:
    """The checks of ``train`` and ``evaluate`` before anything is read or written."""
    from .codebook import check_codebook

    status, report = check_codebook(args.codebook)
    if status:
        print(report, file=sys.stderr)
        return status
    problem = (_corpus_problem(args.corpus) or _reviews_problem(args.reviews)
               or _labels_problem(args) or _out_problem(args.out, args.corpus)
               or _prefect_problem())
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


def _segmentation(args: argparse.Namespace) -> dict[str, Any]:
    """How ``train`` and ``evaluate`` segment the corpus: as given, else as the last run in
    ``--out`` on the same corpus did (so that segment ids and interviewer turns match the
    coded outputs and the review sheets), else the defaults."""
    import json

    from .datasets import RUN_MANIFEST

    last: dict[str, Any] = {}
    try:
        manifest = json.loads((Path(args.out) / RUN_MANIFEST).read_text(encoding="utf-8"))
        if Path(manifest["parameters"]["corpus"]) == Path(args.corpus).resolve():
            last = manifest["parameters"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    labels = _labels(args.interviewer_labels or "")
    return {"interviewer_labels": labels or last.get("interviewer_labels")
            or list(DEFAULT_INTERVIEWER_LABELS),
            "max_turn_chars": args.max_turn_chars or last.get("max_turn_chars")
            or DEFAULT_MAX_TURN_CHARS}


def _print_review_problems(problems: Sequence[str], most: int = 20) -> None:
    for problem in problems[:most]:
        print(f"warning: {problem}", file=sys.stderr)
    if len(problems) > most:
        print(f"warning: ... and {len(problems) - most} more problems in the review files",
              file=sys.stderr)


def _too_few_reviews(args: argparse.Namespace) -> str | None:
    """Why there is nothing to cross-validate, known from the review files alone (before
    Prefect starts, so the researcher gets one clear line instead of a failed run)."""
    from .codebook import load_codebook
    from .reviews import load_reviews

    source = args.reviews or Path(args.corpus) / "reviews"
    decided = load_reviews(source, load_codebook(args.codebook).code_ids).decisions()
    documents = {sid.rsplit(":", 1)[0] for sid in decided}
    if len(decided) >= 2 and len(documents) >= 2:
        return None
    return (f"evaluation needs reviewed segments from at least 2 documents; {source} holds "
            f"{len(decided)} from {len(documents)} — review more segments (`qualcode review "
            "export`, then `qualcode review import`) and run again")


def cmd_evaluate(args: argparse.Namespace) -> int:
    if status := _check_first(args):
        return status
    if problem := _too_few_reviews(args):
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return _holding_outputs(args.out, lambda: _evaluate(args))


def _evaluate(args: argparse.Namespace) -> int:
    from flows import in_process_run
    from flows.train import evaluate_model

    try:
        with in_process_run():
            result = evaluate_model(corpus=args.corpus, codebook=args.codebook,
                                    out=args.out, reviews=args.reviews, backend=args.backend,
                                    folds=args.folds, **_segmentation(args))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    _print_review_problems(result["review_problems"])
    print(result["table"])
    s = result["summary"]
    print(f"\n{s['reviewed']} reviewed segments; macro F1 {s['macro_f1']:.3f} (rules alone "
          f"{s['rules_macro_f1']:.3f}), mean alpha {s['mean_alpha']:.3f}; trust status: "
          + ", ".join(f"{k} {v}" for k, v in s["status"].items()))
    if result["unmatched"]:
        print(f"{result['unmatched']} reviewed segment ids are not in the corpus and were "
              "ignored.")
    print(f"written: {Path(args.out).resolve() / 'evaluation.csv'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if status := _check_first(args):
        return status
    return _holding_outputs(args.out, lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    from flows import in_process_run
    from flows.train import train_model

    with in_process_run():
        meta = train_model(corpus=args.corpus, codebook=args.codebook, out=args.out,
                           reviews=args.reviews, backend=args.backend, folds=args.folds,
                           **_segmentation(args))
    _print_review_problems(meta["review_problems"])
    print(f"\ntrained {meta['model_id']} on {meta['reviewed_segments']} reviewed segments "
          f"({meta['backend']} backend)")
    if meta.get("evaluation"):
        e = meta["evaluation"]
        print(f"cross-validated: macro F1 {e['macro_f1']:.3f}, mean alpha "
              f"{e['mean_alpha']:.3f} (details in evaluation.csv)")
    print(f"saved: {Path(args.out).resolve() / 'model'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .codebook import check_codebook

    status, text = check_codebook(args.codebook)
    if status:
        print(text, file=sys.stderr)
        return status
    if not (Path(args.out) / SEGMENTS_CSV).is_file():
        print(f"error: no segments.csv in '{args.out}' — run `qualcode run` first, or pass "
              "--out with the folder of a previous run", file=sys.stderr)
        return 2
    if _other_codebook(args.out, args.codebook):
        return 1
    if problem := _prefect_problem():
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return _holding_outputs(args.out, lambda: _report(args))


def _report(args: argparse.Namespace) -> int:
    from flows import in_process_run
    from flows.reports import refresh_reports

    with in_process_run():
        result = refresh_reports(out=args.out, codebook=args.codebook)
    print(f"\nreports written to {result['out']}:")
    for name in result["outputs"]:
        print(f"  {name}")
    return 0


def _other_codebook(out: str, codebook: Any) -> bool:
    """Print why and return ``True`` when the outputs in ``out`` were coded with other code
    ids than ``codebook`` (a path or a loaded codebook)."""
    from .codebook import load_codebook
    from .datasets import codebook_mismatch

    book = load_codebook(codebook) if isinstance(codebook, str | Path) else codebook
    problem = codebook_mismatch(out, book)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return problem is not None


def _codebook_or_exit(path: str):
    from .codebook import CodebookError, load_codebook

    try:
        return load_codebook(path)
    except CodebookError as err:
        print(err, file=sys.stderr)
        return None


def cmd_review(args: argparse.Namespace) -> int:
    from .review_sheets import (
        ReviewSheetError,
        export_disagreements,
        export_review_sheet,
        import_review_sheets,
    )
    from .reviews import load_reviews

    book = _codebook_or_exit(args.codebook)
    if book is None:
        return 1
    # (export and disagreements write under --out)
    if args.review_command != "import" and (problem := _out_problem(args.out, args.corpus)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    reviews_dir = Path(args.corpus) / "reviews"
    segments = Path(args.out) / SEGMENTS_CSV
    # A sheet was exported from the coded outputs: imported with another codebook, its
    # empty rows ("no code applies") would be recorded against codes nobody was shown.
    if (args.review_command != "import" or segments.is_file()) \
            and _other_codebook(args.out, book):
        return 1
    try:
        if args.review_command == "export":
            paths = export_review_sheet(
                args.out, book, strategy=args.strategy, n=args.n, coder=args.coder,
                seed=args.seed, include_reviewed=args.include_reviewed,
                reviews=load_reviews(reviews_dir, book.code_ids, book.ids_by_name),
                prefill=not args.blank)
            print("review sheet written:")
            for path in paths:
                print(f"  {path}")
            print("Edit the 'codes' column (';'-separated code ids, empty = no code), then run "
                  "`qualcode review import` on the sheet.")
            return 0
        if args.review_command == "import":
            report = import_review_sheets(args.files, reviews_dir,
                                          segments if segments.is_file() else None, book,
                                          coder=args.coder)
            print(report.summary())
            return 0 if report.ok else 1
        path = export_disagreements(args.out, load_reviews(reviews_dir, book.code_ids,
                                                                  book.ids_by_name),
                                    segments if segments.is_file() else None, codebook=book)
        print(f"disagreements written: {path}\nThe adjudicator fills in 'codes' and imports "
              "the sheet with `qualcode review import`.")
        return 0
    except (ReviewSheetError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def cmd_agreement(args: argparse.Namespace) -> int:
    book = _codebook_or_exit(args.codebook)
    if book is None:
        return 1
    if problem := _out_problem(args.out, args.corpus):  # reliability.csv goes there
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if _other_codebook(args.out, book):
        return 1
    # (a run writing the outputs meanwhile would change scores.csv under it)
    return _holding_outputs(args.out, lambda: _agreement(args, book))


def _agreement(args: argparse.Namespace, book: Any) -> int:
    from .reliability import (
        agreement_table,
        classifier_decisions,
        format_agreement,
        write_reliability,
    )
    from .review_sheets import segment_texts
    from .reviews import load_reviews

    source = args.files or Path(args.corpus) / "reviews"
    reviews = load_reviews(source, book.code_ids, book.ids_by_name)
    texts = segment_texts(args.out)
    if texts:  # as in a run: a decision made on other words than the segment's is not used
        reviews = reviews.checked(texts)
    for problem in reviews.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not reviews.reviews:
        print(f"error: no review decisions found in {source}", file=sys.stderr)
        return 1
    classifier = None
    if (Path(args.out) / SCORES_CSV).is_file():
        classifier = classifier_decisions(args.out, book.code_ids)
    table = agreement_table(reviews, book, classifier)
    print(format_agreement(table))
    if classifier is not None:
        print("\nThe classifier rows are in-sample when the model was trained on these reviews; "
              "the cross-validated figures are in evaluation.csv (qualcode evaluate).")
    print(f"\nwritten: {write_reliability(args.out, table)}")
    return 0


def cmd_codebook_check(args: argparse.Namespace) -> int:
    from .codebook import check_codebook

    status, report = check_codebook(args.file)
    print(report, file=sys.stderr if status else sys.stdout)
    return status


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (``| head``); ``True`` when that
    cannot be told (stdout is not a file)."""
    import select

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))


def _quiet_stdout() -> None:
    """Point stdout at the null device, so that flushing it at exit raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # not a real file (captured, closed)
        pass


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the run stops the same way: Prefect's temporary
    server and the worker processes are stopped, no outputs are half-written."""


def _on_sigterm(pid: int) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != pid:  # a forked worker: die as it would have
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv`` (default: the command line); return the exit status.

    When stdout is closed early (``qualcode codebook check | head -3``) the command stops
    quietly with status 141, as a command killed by SIGPIPE does. SIGTERM stops a command
    as Ctrl-C does, with status 143.
    """
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
    except ValueError:  # not the main thread
        previous = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:  # --help, --version, usage errors: written before exiting
            sys.stdout.flush()
            raise
        status = _command(args)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return status
    except KeyboardInterrupt as err:
        what = "terminated" if isinstance(err, Terminated) else "interrupted"
        print(f"\n{what}: the outputs are those of the last complete run (a run "
              "writes them all at its end, or none)", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    except BrokenPipeError:
        if not _stdout_closed():  # another pipe or socket broke: not ours to hide
            raise
        _quiet_stdout()
        return 141
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def entry() -> NoReturn:
    """The ``qualcode`` command: :func:`main`, then the end of a normal exit (threads
    joined, ``atexit`` handlers run, output flushed) without the interpreter freeing its
    heap object by object. A run leaves the corpus it read in memory (Prefect's contexts
    keep its tasks' results), and freeing it kept the command going for seconds after
    the summary (2.5 s after a 5M-word run, 8 s after 20M words)."""
    status = main()
    threading._shutdown()  # type: ignore[attr-defined]  # as the interpreter's exit does
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken: nothing to say
            stream.flush()
    os._exit(status)


def _command(args: argparse.Namespace) -> int:
    if args.command == "run":
        return cmd_run(args)
    if args.command == "schedule":
        return cmd_schedule(args)
    if args.command == "server":
        return cmd_server(args)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "evaluate":
        return cmd_evaluate(args)
    if args.command == "report":
        return cmd_report(args)
    if args.command == "review":
        return cmd_review(args)
    if args.command == "agreement":
        return cmd_agreement(args)
    if args.command == "codebook":
        return cmd_codebook_check(args)
    return 2


if __name__ == "__main__":
    entry()
