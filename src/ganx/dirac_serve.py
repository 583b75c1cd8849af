"""``ganx-dirac serve``: the Dirac-GAN explorer, one page served by the standard library's HTTP
server, offline (no CDN, no remote fonts: ``dirac_page.html`` is plain HTML, CSS, JS and SVG).

    ganx-dirac serve                      # http://127.0.0.1:8765/
    ganx-dirac serve port=9000 host=0.0.0.0

What it reproduces and extends: the Dirac-GAN code's GUI
(ChristophReich1996/Dirac-GAN@cd73b7c65189c9eaac5a0f96506c9db1e83d2fb3:main.py:98-128: a box
of seven GAN losses, a regularizer box None/R1/RLC/R2, an instance-noise check box, "Run
training"; lines 58-75: the field of negative gradients over [-2, 2]^2 with the trajectory's
points and the start (1, 1)) and the animated trajectories of the paper's own Dirac-GAN code
(LMescheder/GAN_stability@d9bd7a9:notebooks/diracgan/plotting.py:23-43: the trajectory
drawn a step more per frame over the field). The page adds
the other losses and penalties, lr, steps, updates and start, the distance per step, the
eigenvalues, the critical gamma, a verdict, a second setting, the URL, downloads and the 2-D
view.

The page asks, and shows what it gets; it computes nothing of its own:

- ``GET /api/options``: the losses, regularizers and defaults of ``conf/dirac_study.yaml``;
- ``GET /api/dirac?loss=..&reg=..&weight=..&lr=..&steps=..&updates=..&theta=..&psi=..``: one
  Dirac-GAN run (:func:`ganx.dirac_explore.dirac_result`); a bad value: 400 ``{"error": line}``;
- ``GET /api/mixture?dataset=..&loss=..&reg=..&weight=..&steps=..&every=..``: a 2-D mixture
  run streamed as server-sent events, one snapshot per ``every`` steps
  (:mod:`ganx.mixture_live`); ``POST /api/mixture/stop?run=ID`` stops it;
  ``GET /api/mixture/status`` lists the runs in progress.
"""

from __future__ import annotations

import errno
import json
import math
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

KEYS = {"host": "127.0.0.1", "port": "8765"}
PAGE = "dirac_page.html"


def finite(value):
    """JSON has no NaN or infinity: they become null (the page shows "-")."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


class Explorer:
    """What the handlers share: the study's defaults and the 2-D runs in progress."""

    def __init__(self):
        from .dirac_explore import LOCK
        from .dirac_study import compose_ganx

        with LOCK:
            self.defaults = compose_ganx("dirac_study", [])
        self.runs = {}
        self.runs_lock = threading.Lock()

    def options(self) -> dict:
        from omegaconf import OmegaConf

        from .dirac_explore import default_weight
        from .dirac_study import STUDY_LOSSES, STUDY_REGS
        from .mixture_live import MIXTURE_REGS, VIEW_EXTENT

        d = self.defaults
        return {
            "losses": list(STUDY_LOSSES),
            "regs": list(STUDY_REGS),
            "weights": {r: default_weight(d, r) for r in STUDY_REGS},
            "defaults": {
                "loss": "ns",
                "reg": "none",
                "lr": d.lr,
                "steps": d.steps,
                "updates": d.updates,
                "theta": d.start[0],
                "psi": d.start[1],
            },
            "tol": d.tol,
            "reg_settings": OmegaConf.to_container(d.reg_settings),
            "mixture": {"datasets": list(VIEW_EXTENT), "regs": list(MIXTURE_REGS)},
        }


class Handler(BaseHTTPRequestHandler):
    explorer: Explorer  # set on the class made by make_server
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass  # the console shows ganx-dirac's own lines, not one per request

    def send_json(self, status: int, body: dict) -> None:
        data = json.dumps(finite(body), allow_nan=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802  (the base class's name)
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        routes = {
            "/": self.page,
            "/api/options": lambda q: self.send_json(200, self.explorer.options()),
            "/api/dirac": self.dirac,
            "/api/mixture": self.mixture,
            "/api/mixture/status": self.status,
        }
        if url.path not in routes:
            self.send_json(404, {"error": f"{url.path}: no such page"})
            return
        routes[url.path](query)

    def do_POST(self):  # noqa: N802
        url = urlsplit(self.path)
        if url.path != "/api/mixture/stop":
            self.send_json(404, {"error": f"{url.path}: no such endpoint"})
            return
        run_id = dict(parse_qsl(url.query)).get("run", "")
        with self.explorer.runs_lock:
            run = self.explorer.runs.get(run_id)
        if run is None:
            self.send_json(404, {"error": f"run={run_id!r}: no such run in progress"})
            return
        run.stop()
        self.send_json(200, {"stopped": run_id, "step": run.step})

    def page(self, query):
        data = resources.files("ganx").joinpath(PAGE).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def dirac(self, query):
        from .dirac_explore import BadQuery, dirac_result, dirac_settings

        try:
            settings = dirac_settings(query, self.explorer.defaults)
        except BadQuery as err:
            self.send_json(400, {"error": str(err)})
            return
        try:
            result = dirac_result(settings)
        except Exception as err:  # one line for the page, never a hung request
            first = (str(err).splitlines() or [""])[0]
            self.send_json(500, {"error": f"ganx-dirac serve: {type(err).__name__}: {first}"})
            return
        self.send_json(200, result)

    def status(self, query):
        with self.explorer.runs_lock:
            running = {k: {"step": r.step, **r.settings} for k, r in self.explorer.runs.items()}
        self.send_json(200, {"running": running})

    def mixture(self, query):
        from .dirac_explore import BadQuery
        from .mixture_live import MixtureRun, mixture_query

        try:
            run = MixtureRun(mixture_query(query))
        except BadQuery as err:
            self.send_json(400, {"error": str(err)})
            return
        run_id = str(run.id)
        with self.explorer.runs_lock:
            self.explorer.runs[run_id] = run
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self.event("start", {"run": run_id, **run.settings})
            for shot in run.snapshots():
                self.event("snapshot", shot)
            self.event("end", {"step": run.step, "stopped": run.stopped.is_set()})
        except (BrokenPipeError, ConnectionResetError):
            run.stop()  # the page went away
        finally:
            with self.explorer.runs_lock:
                self.explorer.runs.pop(run_id, None)

    def event(self, name: str, body: dict) -> None:
        data = json.dumps(finite(body), allow_nan=False)
        self.wfile.write(f"event: {name}\ndata: {data}\n\n".encode())
        self.wfile.flush()


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    """The explorer's server (not yet serving); ``port=0`` takes a free port."""
    handler = type("ExplorerHandler", (Handler,), {"explorer": Explorer()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True  # a stream in progress does not keep Ctrl-C waiting
    return server


def parse_keys(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments of ``ganx-dirac serve``; SystemExit with one line if bad."""
    keys = dict(KEYS)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            sys.exit(f"ganx-dirac serve: error: {arg!r}: expected key=value, keys: host, port")
        keys[key] = value
    if not keys["port"].isdigit() or not 0 <= int(keys["port"]) <= 65535:
        sys.exit(f"ganx-dirac serve: error: port={keys['port']!r}: a whole number, 0..65535")
    return keys


def serve_main(argv: list[str]) -> None:
    keys = parse_keys(argv)
    try:
        server = make_server(keys["host"], int(keys["port"]))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            sys.exit(
                f"ganx-dirac serve: error: port {keys['port']} on {keys['host']} is in use; "
                "choose another with port=N"
            )
        sys.exit(f"ganx-dirac serve: error: {keys['host']}:{keys['port']}: {err.strerror}")
    host, port = server.server_address[:2]
    # Ctrl-C stops the server even where SIGINT came in ignored (a shell starts background jobs
    # that way, and the child keeps it): ganx-train's StopRequest installs its handlers too
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"ganx-dirac serve: http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("ganx-dirac serve: stopped", flush=True)
    finally:
        server.server_close()
