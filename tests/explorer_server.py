"""``ganx-dirac serve``'s server in this process (a thread, a free port) for the tests."""

import contextlib
import json
import threading
import urllib.error
import urllib.request

from ganx.dirac_serve import make_server


@contextlib.contextmanager
def running_explorer():
    """The base URL of an explorer serving in a thread until the block ends."""
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def get_json(url: str, method: str = "GET") -> tuple[int, dict]:
    """(status, body) of a JSON endpoint, 4xx included."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
