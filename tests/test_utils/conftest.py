"""A loopback http server for the URL tests, and a private hub folder."""
import collections
import contextlib
import functools
import http.server
import threading

import pytest
import torch


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder (with Last-Modified / If-Modified-Since), counts
    the GETs per path, and streams ``/stream/<n>`` (n bytes of 'A') with
    no Content-Length."""

    counts: collections.Counter = None

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.counts[self.path] += 1
        if self.path.startswith('/stream/'):
            size = int(self.path.split('/')[-1])
            self.send_response(200)
            self.send_header('Connection', 'close')
            self.end_headers()
            for _ in range(size // 4096):
                self.wfile.write(b'PK\x03\x04' + b'A' * 4092)
            return
        super().do_GET()


@contextlib.contextmanager
def serve(directory, counts=None):
    """An http server of ``directory`` on a free loopback port, closed on
    exit; ``counts`` (a Counter) receives the GETs per path."""
    handler = functools.partial(
        type('Handler', (_Handler, ),
             {'counts': counts if counts is not None else
              collections.Counter()}),
        directory=directory)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    yield str(tmp_path / 'hub')
    torch.hub.set_dir(old)
