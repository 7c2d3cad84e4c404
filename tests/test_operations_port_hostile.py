"""The operations port under clients that hold bodies: a real `serve` (gunicorn, gevent, 2 processes).

Login bodies that never arrive, and login bodies of a gigabyte, must not freeze `/readyz` (the readiness
probe and the Asaas queue watch's resume condition) or `/metrics`: operations-port bodies are read before
the slots that serve them, under BODY_TIMEOUT (408), and refused over 4 KiB (413). The one-second bound
below is the behaviour under test (a probe that must answer during an attack).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.processes import Process, serving
from tests.test_hostile_clients import _rss_kib

BODY_TIMEOUT = 3
GIGABYTE = 1_000_000_000


@pytest.fixture(scope="module")
def receiver(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, str]]:
    log: Path = tmp_path_factory.mktemp("ops-hostile") / "receiver.log"
    env = {**service_env, "CONSOLE_PASSWORD": "operations-port-test-password", "BODY_TIMEOUT": str(BODY_TIMEOUT)}
    with serving(env, log) as (process, url):
        yield process, url


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


ATTACKER = r"""
import collections, json, socket, sys, threading, time
host, port, idle, huge, seconds, patience = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \
    float(sys.argv[5]), float(sys.argv[6])
GIGABYTE = 1_000_000_000
stop = threading.Event()
answers, sent = collections.Counter(), [0]

def head(length):
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST /console/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"{framing}\r\n\r\n").encode()

def answer(sock):
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except OSError:
        pass
    answers[data[:12].decode(errors="replace")] += 1

def idle_login():  # declares a body and sends nothing; connects again once answered
    while not stop.is_set():
        with socket.create_connection((host, port), timeout=patience) as sock:
            sock.sendall(head(1000))
            answer(sock)

def huge_login(chunked):  # a gigabyte, as fast as the server takes it; connects again once answered
    block = b"x" * 65536
    if chunked:
        block = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    while not stop.is_set():
        with socket.create_connection((host, port), timeout=5) as sock:
            try:
                sock.sendall(head(None if chunked else GIGABYTE))
                total = 0
                while total < GIGABYTE and not stop.is_set():
                    sock.sendall(block)
                    total += len(block)
                    sent[0] += len(block)
            except OSError:
                pass
            answer(sock)

threads = [threading.Thread(target=idle_login, daemon=True) for _ in range(idle)]
threads += [threading.Thread(target=huge_login, args=(n % 2 == 0,), daemon=True) for n in range(huge)]
for thread in threads:
    thread.start()
time.sleep(seconds)
stop.set()
print(json.dumps({"answers": answers, "sent": sent[0]}), flush=True)
"""


def _answer(sock: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := sock.recv(4096):
            answer += chunk
    except OSError:
        pass
    return answer


@pytest.mark.slow
def test_readyz_and_metrics_answer_within_a_second_while_login_bodies_are_held(
    receiver: tuple[Process, str],
) -> None:
    """50 idle login connections and 10 sending 1 GB login bodies (half chunked), from another process;
    `/readyz` and `/metrics` probed every 2 s for 30 s."""
    process, _ = receiver
    ops = process.ops_url  # type: ignore[attr-defined]
    host, port = _address(ops)
    before = peak = _rss_kib(process.popen.pid)
    attacker = subprocess.Popen(
        [sys.executable, "-c", ATTACKER, host, str(port), "50", "10", "32", str(BODY_TIMEOUT + 10)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    probes: list[tuple[str, int, float]] = []
    try:
        time.sleep(1)
        start = time.monotonic()
        for tick in range(15):
            time.sleep(max(0.0, start + 2 * tick - time.monotonic()))
            for path in ("/readyz", "/metrics"):
                started = time.monotonic()
                status = requests.get(ops + path, timeout=1).status_code  # raises beyond one second
                probes.append((path, status, round(time.monotonic() - started, 3)))
            peak = max(peak, _rss_kib(process.popen.pid))
        report = json.loads(attacker.communicate(timeout=60)[0])
    finally:
        attacker.kill()
        attacker.wait()
    assert {status for _, status, _ in probes} == {200} and len(probes) == 30, probes
    grown_mib = (peak - before) / 1024
    assert grown_mib < 50, f"receiver grew {grown_mib:.0f} MiB"
    assert report["answers"].get("HTTP/1.1 408", 0) >= 50, report  # every idle login ends at BODY_TIMEOUT
    assert report["answers"].get("HTTP/1.1 413", 0) >= 10, report  # and every gigabyte at 4 KiB
    assert report["sent"] > 10 * 65_536, report  # the big bodies were really being sent
    print(f"slowest probe {max(t for _, _, t in probes):.3f} s; grew {grown_mib:.1f} MiB; {report}")


def test_an_operations_body_over_4_kib_is_413(receiver: tuple[Process, str]) -> None:
    process, _ = receiver
    ops = process.ops_url  # type: ignore[attr-defined]
    answer = requests.post(f"{ops}/console/login", data={"password": "x" * 5000}, timeout=10)
    assert answer.status_code == 413 and answer.json()["error"] == "body_too_large"
    small = requests.post(f"{ops}/console/login", data={"password": "wrong"}, timeout=10, allow_redirects=False)
    assert small.status_code == 401  # a form of normal size is read and answered as before


@pytest.mark.parametrize("size_line", [b"0x10", b"-1", b"zz"])
def test_malformed_chunk_sizes_on_the_webhook_port_are_400_without_an_error_log(
    receiver: tuple[Process, str], size_line: bytes
) -> None:
    process, url = receiver
    with socket.create_connection(_address(url), timeout=10) as sock:
        sock.sendall(
            b"POST /webhooks/asaas HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"asaas-access-token: asaas-test-token\r\nTransfer-Encoding: chunked\r\n\r\n"
            + size_line
            + b"\r\n{}\r\n0\r\n\r\n"
        )
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:120]
    assert b'"error":"malformed_body"' in answer
    time.sleep(0.2)
    assert "ERROR" not in process.output() and "unexpected error" not in process.output()


def test_a_login_body_cut_short_is_not_a_login_attempt(receiver: tuple[Process, str]) -> None:
    """A client that declares a body and closes early gets no login attempt (an empty password would count
    against the address): 400 on both ports, never a shorter body."""
    process, url = receiver
    for target, path in ((process.ops_url, "/console/login"), (url, "/webhooks/asaas")):  # type: ignore[attr-defined]
        with socket.create_connection(_address(target), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                "asaas-access-token: asaas-test-token\r\nContent-Length: 1000\r\n\r\npassword=x".encode()
            )
            sock.shutdown(socket.SHUT_WR)
            answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 400"), (path, answer[:120])
        assert b'"error":"malformed_body"' in answer
