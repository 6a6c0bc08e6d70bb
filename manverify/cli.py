"""The `manverify` command: demo, verify, screen, lookup, report, sign, serve, scrub, bench."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from .errors import Error, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CLOSED_PIPE = 128 + 13  # what a shell reports for a program ended by SIGPIPE


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    # bench has its own options (bench.main parses them); argparse's REMAINDER does not take an
    # option that comes first, so "bench --json" would be refused here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "func", None) is not _bench:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.rest = extra + args.rest
    if args.version:
        print(_version())
        return EXIT_OK
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        status = args.func(args)
        if sys.stdout is not None:  # None: started with stdout closed (`>&-`), nothing to flush
            sys.stdout.flush()  # a reader gone away shows here, not in the interpreter's last flush
        return status
    except BrokenPipeError:
        return _closed_pipe()
    except Error as e:
        print(f"manverify: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print(f"manverify: {e}", file=sys.stderr)
        return EXIT_USAGE


def _closed_pipe() -> int:
    """The reader of our output went away (`| head -1`): end quietly, as a program that SIGPIPE
    ended would, instead of with a traceback. What is still buffered for stdout goes to /dev/null,
    or Python's flush at exit would report the broken pipe after all."""
    if sys.stdout is None:  # started with stdout closed: nothing buffered
        return EXIT_CLOSED_PIPE
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file descriptor (captured, replaced): nothing to do
        pass
    return EXIT_CLOSED_PIPE


def _version() -> str:
    from . import __version__, es256

    return f"manverify {__version__}, signature backend {es256.backend_line()}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="manverify", description="STIR/SHAKEN and MAN call verification")
    p.add_argument("--version", action="store_true", help="print the version and the signature backend")
    sub = p.add_subparsers(metavar="COMMAND")

    d = sub.add_parser("demo", help="sign and verify a few thousand calls on an embedded lab PKI")
    d.add_argument("--calls", type=int, default=3000, help="number of calls (default 3000)")
    d.add_argument("--jsonl", metavar="FILE", help="write the decision records (for manverify report)")
    d.add_argument("--screening", action="store_true",
                   help="screen a labelled day of French traffic instead (numbering plan, lists, call patterns)")
    d.add_argument("--redis", metavar="URL", help="with --screening: count in this Redis instead of in-process")
    d.set_defaults(func=_demo)

    v = sub.add_parser("verify", help="verify one call, or a JSONL batch")
    v.add_argument("--identity", action="append", default=[], metavar="H",
                   help="Identity header value (repeat for several headers)")
    v.add_argument("--orig", help="calling number (PAI or From)")
    v.add_argument("--dest", help="called number (To or Request-URI)")
    v.add_argument("--date", help="the SIP Date header value")
    v.add_argument("--batch", metavar="FILE",
                   help="JSONL file (- for stdin), one call per line: orig, dest, identity, date, now, id")
    v.add_argument("--trust", action="append", required=True, metavar="CA.pem",
                   help="trust anchor certificate (repeatable)")
    v.add_argument("--cert", action="append", default=[], metavar="URL=FILE",
                   help="local copy of the chain served at URL (repeatable)")
    v.add_argument("--certs", metavar="DIR", help="directory holding the local certificate copy")
    v.add_argument("--crl", action="append", default=[], metavar="FILE", help="local CRL (repeatable)")
    v.add_argument("--cache-dir", metavar="DIR", help="on-disk certificate cache shared by processes")
    v.add_argument("--profile", default="man", choices=("man", "atis", "rfc"))
    v.add_argument("--max-age", type=int, default=60, help="freshness window in seconds (default 60)")
    v.add_argument("--allow-http", action="store_true", help="lab only: http:// x5u on loopback")
    v.add_argument("--now", type=float, help="verify as of this epoch time")
    v.add_argument("--json", action="store_true", help="print the full result as JSON")
    v.set_defaults(func=_verify)

    sc = sub.add_parser("screen", help="screen a JSONL batch of calls (manverify.screen)")
    sc.add_argument("--batch", metavar="FILE", required=True,
                    help="JSONL file (- for stdin), one call per line: orig, dest, now, entry, partner, "
                         "verstat, attest, id")
    sc.add_argument("--config", metavar="FILE", required=True,
                    help="JSON: the screening mapping, or a configuration holding it under \"screening\"")
    sc.add_argument("--now", type=float, help="screen lines without \"now\" as of this epoch time")
    sc.set_defaults(func=_screen)

    lk = sub.add_parser("lookup", help="caller look-up: what screening knows of a number, its label and score (JSON)")
    lk.add_argument("tn", metavar="TN", help="the number, in any common form")
    lk.add_argument("--config", metavar="FILE", required=True,
                    help="JSON: the screening mapping, or a configuration holding it under \"screening\"")
    lk.add_argument("--report", metavar="CATEGORY", choices=("canvassing", "scam", "silent", "other"),
                    help="record a user's report of TN first (with --reporter)")
    lk.add_argument("--reporter", metavar="ID", help="who reports (stored only as a keyed hash)")
    lk.add_argument("--now", type=float, help="as of this epoch time")
    lk.set_defaults(func=_lookup)

    r = sub.add_parser("report", help="calls, pass rate and failures per originating operator; "
                                      "per screening rule for screening decisions")
    r.add_argument("file", metavar="RESULTS.jsonl",
                   help="decision records, e.g. the output of verify --batch (- for stdin)")
    r.add_argument("--html", metavar="OUT.html", help="also write a self-contained page with a chart")
    r.set_defaults(func=_report)

    s = sub.add_parser("sign", help="sign a call (prints the Identity header value)")
    s.add_argument("--key", required=True, metavar="KEY.pem", help="the signer's P-256 private key")
    s.add_argument("--x5u", required=True, metavar="URL", help="URL of the signer's certificate chain")
    s.add_argument("--orig", required=True)
    s.add_argument("--dest", required=True, action="append", help="called number (repeatable)")
    s.add_argument("--attest", default="A", choices=("A", "B", "C"))
    s.add_argument("--origid", help="origination identifier (default: a random UUID)")
    s.add_argument("--iat", type=int, help="issued-at, epoch seconds (default: now)")
    s.add_argument("--token", action="store_true", help="print the bare PASSporT, not the header value")
    s.set_defaults(func=_sign)

    sv = sub.add_parser("serve", help="the STI verification/signing service for SBCs (HTTP)")
    sv.add_argument("--config", metavar="FILE", help="the JSON configuration (keys: docs/serving.md)")
    sv.add_argument("--lab-config", metavar="DIR",
                    help="write a lab PKI and its configuration into DIR, print how to start it, exit")
    sv.set_defaults(func=_serve)

    sb = sub.add_parser("scrub", help="a CSV of contacts in, the rows that may be called out")
    sb.add_argument("contacts", metavar="CONTACTS.csv", help="the call file, with a header line (- for stdin)")
    sb.add_argument("--opposition", nargs="+", action="extend", metavar="FILE",
                    help="opposition or red list files (list syntax: numbers, prefixes, ranges)")
    sb.add_argument("--column", metavar="NAME", help="the number column (default: number, phone, telephone...)")
    sb.add_argument("-o", "--output", metavar="OUT", help="write the callable rows here (default stdout)")
    sb.add_argument("--summary", metavar="FILE", help="also write the summary as JSON")
    sb.add_argument("--customer", metavar="ID", help="with --config: the customer's refusals and repeat limit")
    sb.add_argument("--config", metavar="FILE", help="the JSON configuration holding the customers")
    sb.add_argument("--keep-duplicates", action="store_true", help="write every row of a number, not the first")
    sb.set_defaults(func=_scrub)

    b = sub.add_parser("bench", help="side-by-side speed ratios on this machine", add_help=False)
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=_bench)
    return p


def _demo(args) -> int:
    from .demo import run

    if args.calls < 1:
        raise UsageError("--calls must be positive")
    if args.redis and not args.screening:
        raise UsageError("--redis goes with --screening")
    if args.screening:
        from .screen.demo import run as screening

        return screening(redis=args.redis)
    return run(args.calls, jsonl=args.jsonl)


def _verifier(args):
    from .verifier import Verifier

    certificates = None
    if args.cert and args.certs:
        raise UsageError("use --cert or --certs, not both")
    if args.cert:
        certificates = {}
        for item in args.cert:
            url, sep, path = item.partition("=")
            if not sep:
                raise UsageError(f"--cert wants URL=FILE, not {item!r}")
            with open(path, "rb") as f:
                certificates[url] = f.read()
    elif args.certs:
        certificates = args.certs
    return Verifier(trust_anchors=args.trust, certificates=certificates, crls=args.crl or None,
                    cache_dir=args.cache_dir, max_age=args.max_age, allow_http=args.allow_http,
                    profile=args.profile)


def _verify(args) -> int:
    verifier = _verifier(args)
    if args.batch:
        return _verify_batch(verifier, args)
    if args.orig is None or args.dest is None:
        raise UsageError("--orig and --dest are required (or use --batch)")
    from .report import shown  # the detail may quote call data: printed escaped

    r = verifier.verify(args.identity or None, orig=args.orig, dest=args.dest, date=args.date,
                        now=args.now)
    if args.json:
        print(json.dumps(r.to_dict(), indent=2))
    elif r.ok:
        print(f"pass  attest={r.attest} spc={r.spc} verstat={r.verstat}  {shown(r.detail)}")
    else:
        print(f"FAIL  {r.sip_code} {r.reason}  verstat={r.verstat}  {shown(r.detail)}")
    return EXIT_OK if r.ok else EXIT_FAILED


def _verify_batch(verifier, args) -> int:
    from . import batch

    if sys.stdout is None:
        # Started with stdout closed (`>&-`): the records have no reader from the start, which
        # ends the run as a reader gone away does, before any call is verified for nothing.
        return _closed_pipe()
    stream = sys.stdin.buffer if args.batch == "-" else open(args.batch, "rb")
    with stream:
        ok = batch.run(verifier, stream, sys.stdout, sys.stderr, progress=sys.stderr.isatty(),
                       default_now=args.now)
    return EXIT_OK if ok else EXIT_FAILED


def _screen(args) -> int:
    from .screen import batch

    screen = batch.load(args.config)
    try:
        stream = sys.stdin.buffer if args.batch == "-" else open(args.batch, "rb")
        with stream:
            ok = batch.run(screen, stream, sys.stdout, sys.stderr, progress=sys.stderr.isatty(),
                           default_now=args.now)
    finally:
        screen.close()
    return EXIT_OK if ok else EXIT_FAILED


def _lookup(args) -> int:
    from .screen import batch

    if (args.report is None) != (args.reporter is None):
        raise UsageError("--report CATEGORY and --reporter ID go together")
    screen = batch.load(args.config)  # one question, then exit: no file watching
    try:
        if args.report is not None:
            out = screen.report(args.tn, args.report, args.reporter, now=args.now)
        else:
            out = screen.lookup(args.tn, now=args.now)
    finally:
        screen.close()
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return EXIT_OK


def _report(args) -> int:
    from . import report

    if args.html:
        report.require_plotting()  # before reading: the missing extra is the first thing to know
    stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    with stream:
        tally = report.read(stream)
    sys.stdout.write(report.table(tally))
    if args.html:
        page = report.html_page(tally, "standard input" if args.file == "-" else args.file)
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(page)
    return EXIT_OK


def _sign(args) -> int:
    from .signer import Signer

    with open(args.key, "rb") as f:
        signer = Signer(f.read(), args.x5u)
    if args.token:
        print(signer.passport(args.orig, args.dest, args.attest, args.origid, args.iat))
    else:
        print(signer.sign(args.orig, args.dest, args.attest, args.origid, args.iat))
    return EXIT_OK


def _serve(args) -> int:
    if bool(args.config) == bool(args.lab_config):
        raise UsageError("serve needs --config FILE (or --lab-config DIR to make a lab one)")
    if args.lab_config:
        from .serve import lab

        path = lab.write(args.lab_config)
        print(f"lab configuration written: {path}\nstart it with: manverify serve --config {path}")
        return EXIT_OK
    from .serve import run

    return run(args.config)


def _scrub(args) -> int:
    from .screen import scrub

    return scrub.main(args)


def _bench(args) -> int:
    try:
        from . import bench
    except ImportError:
        print("manverify bench: the benchmark module is not available in this build", file=sys.stderr)
        return EXIT_USAGE
    return bench.main(args.rest)


if __name__ == "__main__":
    sys.exit(main())
