"""(3) Cold start: import + client + first call, each run in a fresh Python process.

The child times itself from just before the import to the first answer (interpreter start-up
excluded, it is the same for all); the parent also records the whole process's wall time.
Runs alternate smruntime default, smruntime fastest (``FastHTTPClient``) and boto3 (in turned
round order every other round) against the same loopback server; medians.

The AWS Lambda case is measured too: credentials from ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (the default chain), once with ``endpoint_url`` and once with the
regional endpoint resolved from the rules (``https://runtime.sagemaker.us-east-1.amazonaws.com``).
For the latter a TLS server on loopback answers with a throw-away certificate for that host
(trusted through ``REQUESTS_CA_BUNDLE``/``AWS_CA_BUNDLE``), and each child, before its clock
starts, makes ``socket.getaddrinfo`` answer that host with the server's address: both clients
do their real name lookup, TLS handshake and certificate check, just against loopback.
"""

from __future__ import annotations

import compileall
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ACCESS_KEY,
    REGION,
    REPO,
    SECRET_KEY,
    Section,
    median,
    paired_ratio,
    ratio,
    round_order,
    spread,
    standalone,
    subprocess_env,
    table,
)
from benchmarks.server import RESPONSE, LoopbackServer

RUNS = 10

_PRELUDE = """
import json, sys, time
url = sys.argv[1]
start = time.perf_counter()
"""

REGIONAL_HOST = f"runtime.sagemaker.{REGION}.amazonaws.com"

# Run before the clock starts: the regional host resolves to the loopback TLS server.
_REGIONAL_PRELUDE = f"""
import socket
_real_getaddrinfo = socket.getaddrinfo
def _getaddrinfo(host, port, *args, **kwargs):
    if host == {REGIONAL_HOST!r}:
        return _real_getaddrinfo("127.0.0.1", int(sys.argv[2]), *args, **kwargs)
    return _real_getaddrinfo(host, port, *args, **kwargs)
socket.getaddrinfo = _getaddrinfo
"""

_SMRUNTIME_ENV = _PRELUDE + f"""
from smruntime import Client
imported = time.perf_counter()
client = Client(region={REGION!r}, endpoint_url=url)
created = time.perf_counter()
body = client.invoke_endpoint(endpoint_name="bench", body=b"{{}}", content_type="application/json").body
"""

_SMRUNTIME_REGIONAL = _REGIONAL_PRELUDE + _PRELUDE + f"""
from smruntime import Client
imported = time.perf_counter()
client = Client(region={REGION!r})
created = time.perf_counter()
body = client.invoke_endpoint(endpoint_name="bench", body=b"{{}}", content_type="application/json").body
"""

_BOTO3_ENV = _PRELUDE + f"""
import boto3
import botocore.config
imported = time.perf_counter()
client = boto3.session.Session(region_name={REGION!r}).client(
    "sagemaker-runtime", endpoint_url=url, config=botocore.config.Config(retries={{"mode": "standard"}}))
created = time.perf_counter()
body = client.invoke_endpoint(EndpointName="bench", Body=b"{{}}", ContentType="application/json")["Body"].read()
"""

_BOTO3_REGIONAL = _REGIONAL_PRELUDE + _PRELUDE + f"""
import boto3
import botocore.config
imported = time.perf_counter()
client = boto3.session.Session(region_name={REGION!r}).client(
    "sagemaker-runtime", config=botocore.config.Config(retries={{"mode": "standard"}}))
created = time.perf_counter()
assert client.meta.endpoint_url == "https://{REGIONAL_HOST}", client.meta.endpoint_url
body = client.invoke_endpoint(EndpointName="bench", Body=b"{{}}", ContentType="application/json")["Body"].read()
"""

_SMRUNTIME = _PRELUDE + f"""
from smruntime import Client
imported = time.perf_counter()
client = Client(region={REGION!r}, credentials=({ACCESS_KEY!r}, {SECRET_KEY!r}), endpoint_url=url)
created = time.perf_counter()
body = client.invoke_endpoint(endpoint_name="bench", body=b"{{}}", content_type="application/json").body
"""

_SMRUNTIME_FAST = _PRELUDE + f"""
from smruntime import Client
from smruntime.transport import FastHTTPClient
imported = time.perf_counter()
client = Client(region={REGION!r}, credentials=({ACCESS_KEY!r}, {SECRET_KEY!r}), endpoint_url=url,
                http_client=FastHTTPClient())
created = time.perf_counter()
body = client.invoke_endpoint(endpoint_name="bench", body=b"{{}}", content_type="application/json").body
"""

_BOTO3 = _PRELUDE + f"""
import boto3
import botocore.config
imported = time.perf_counter()
session = boto3.session.Session(aws_access_key_id={ACCESS_KEY!r}, aws_secret_access_key={SECRET_KEY!r},
                                region_name={REGION!r})
client = session.client("sagemaker-runtime", endpoint_url=url,
                        config=botocore.config.Config(retries={{"mode": "standard"}}))
created = time.perf_counter()
body = client.invoke_endpoint(EndpointName="bench", Body=b"{{}}", ContentType="application/json")["Body"].read()
"""

# What any client on requests' engine and attrs pays before its own work: the two imports (with
# urllib3's http.client, ssl, email parser and importlib.metadata, and attrs' inspect) and one
# POST through a urllib3 pool. It loads exactly the modules outside smruntime that the default
# client's cold start loads (tests/integration/test_cold_start_imports.py keeps them in step).
_FLOOR = _PRELUDE + """
import attrs
import urllib3
imported = time.perf_counter()
pool = urllib3.connection_from_url(url)
created = time.perf_counter()
body = pool.urlopen("POST", "/endpoints/bench/invocations", body=b"{}",
                    headers={"Content-Type": "application/json"}).data
"""

_REPORT = """
done = time.perf_counter()
assert body == b"{}", body
print(json.dumps({"import": imported - start, "client": created - imported, "first_call": done - created,
                  "total": done - start}))
"""

SCRIPTS = {
    "smruntime default": _SMRUNTIME + _REPORT,
    "smruntime fastest": _SMRUNTIME_FAST + _REPORT,
    "boto3": _BOTO3 + _REPORT,
    "smruntime default, env credentials, endpoint_url": _SMRUNTIME_ENV + _REPORT,
    "boto3, env credentials, endpoint_url": _BOTO3_ENV + _REPORT,
    "smruntime default, env credentials, regional endpoint": _SMRUNTIME_REGIONAL + _REPORT,
    "boto3, env credentials, regional endpoint": _BOTO3_REGIONAL + _REPORT,
    "floor: urllib3 + attrs imports, one POST, no client": _FLOOR + _REPORT,
}
# Each contender's ratio is to boto3 measured the same way, in the same rounds.
BASELINES = {
    "smruntime default": "boto3",
    "smruntime fastest": "boto3",
    "boto3": "boto3",
    "smruntime default, env credentials, endpoint_url": "boto3, env credentials, endpoint_url",
    "boto3, env credentials, endpoint_url": "boto3, env credentials, endpoint_url",
    "smruntime default, env credentials, regional endpoint": "boto3, env credentials, regional endpoint",
    "boto3, env credentials, regional endpoint": "boto3, env credentials, regional endpoint",
    "floor: urllib3 + attrs imports, one POST, no client": "boto3",
}


class RegionalTLSServer:
    """Answers HTTPS for the regional host on loopback, with a certificate made for the run."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory()
        folder = Path(self._folder.name)
        self.ca_bundle = str(folder / "cert.pem")
        key = str(folder / "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", self.ca_bundle, "-days", "1", "-subj", f"/CN={REGIONAL_HOST}",
             "-addext", f"subjectAltName=DNS:{REGIONAL_HOST}"],
            check=True, capture_output=True,
        )
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.ca_bundle, key)
        # No TLS 1.3 session tickets: small writes ahead of the answer that, with Nagle and a
        # delayed ACK, could hold it back ~40 ms (the server has no session cache to use anyway).
        self._context.num_tickets = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the plain-HTTP server
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self._context.wrap_socket(raw, server_side=True) as conn:
                buffer = b""
                while True:
                    while b"\r\n\r\n" not in buffer:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(buffer) < length:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                    buffer = buffer[length:]
                    conn.sendall(RESPONSE)
        except (OSError, ssl.SSLError):
            return

    def close(self) -> None:
        self._listener.close()
        self._folder.cleanup()


def child_env(tls: RegionalTLSServer) -> dict[str, str]:
    """The benchmark environment plus credentials in the standard variables (the Lambda case)."""
    env = subprocess_env()
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               REQUESTS_CA_BUNDLE=tls.ca_bundle, AWS_CA_BUNDLE=tls.ca_bundle)
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "HTTPS_PROXY", "https_proxy"):
        env.pop(name, None)
    return env


def one_run(script: str, url: str, tls: RegionalTLSServer) -> dict[str, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", script, url, str(tls.port)], capture_output=True, text=True, env=child_env(tls),
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"cold-start child failed:\n{result.stderr}")
    figures: dict[str, float] = json.loads(result.stdout)
    figures["process"] = wall
    return figures


def run(server: LoopbackServer | None = None, *, runs: int = RUNS) -> Section:
    if server is None:
        with LoopbackServer() as own:
            return run(own, runs=runs)
    # pip compiles a package's bytecode when it installs it; a checkout run with
    # PYTHONDONTWRITEBYTECODE would otherwise compile smruntime from source in every child.
    compileall.compile_dir(str(REPO / "smruntime"), quiet=1)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in SCRIPTS}
    tls = RegionalTLSServer()
    try:
        for index in range(runs + 1):  # the first round warms the page cache and is not kept
            for name, script in round_order(SCRIPTS, index):
                figures = one_run(script, server.url, tls)
                if index:
                    samples[name].append(figures)
    finally:
        tls.close()

    def med(name: str, part: str) -> float:
        return median([figures[part] for figures in samples[name]])

    def versus(name: str) -> float:
        return paired_ratio([figures["total"] for figures in samples[name]],
                            [figures["total"] for figures in samples[BASELINES[name]]])

    rows = []
    for name in SCRIPTS:
        totals = [figures["total"] for figures in samples[name]]
        rows.append((
            name,
            f"{med(name, 'import') * 1e3:.0f}",
            f"{med(name, 'client') * 1e3:.1f}",
            f"{med(name, 'first_call') * 1e3:.1f}",
            f"**{med(name, 'total') * 1e3:.0f}**",
            spread(totals),
            f"{med(name, 'process') * 1e3:.0f}",
            ratio(versus(name)),
        ))
    data: dict[str, Any] = {
        "runs": runs,
        "ms": {name: {part: med(name, part) * 1e3 for part in ("import", "client", "first_call", "total", "process")}
               for name in SCRIPTS},
        "smruntime_vs_boto3": versus("smruntime default"),
        "fastest_vs_boto3": versus("smruntime fastest"),
        "env_endpoint_url_vs_boto3": versus("smruntime default, env credentials, endpoint_url"),
        "env_regional_vs_boto3": versus("smruntime default, env credentials, regional endpoint"),
        "floor_vs_boto3": versus("floor: urllib3 + attrs imports, one POST, no client"),
    }
    return Section(
        "cold_start",
        "3. Cold start (fresh process: import + client + first call)",
        table(["client", "import ms", "client ms", "first call ms", "total ms", "spread", "process wall ms",
               "vs boto3"], rows),
        data,
        [f"{runs} runs each, alternating, after one warm-up round; medians (ratios: medians of per-round ratios). "
         "'process wall' adds the interpreter's "
         "own start-up and exit, the same for all.",
         "smruntime's bytecode is compiled first (`compileall`), as `pip install` does; boto3's already is.",
         "'env credentials' rows: no credentials argument, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY set (the "
         "AWS Lambda case); each is compared with boto3 measured the same way. 'regional endpoint': no "
         "endpoint_url, the endpoint comes from the rules; the call is real HTTPS (name lookup redirected to a "
         "loopback TLS server, certificate trusted through the CA-bundle variables).",
         "'floor': no smruntime, only the imports the default client cannot do without (urllib3, which "
         "requests' engine is, and attrs, which the middleware framework's types are built with) and one "
         "POST through a urllib3 pool; it loads the same modules outside smruntime as the default client."],
    )


if __name__ == "__main__":
    standalone(run)
