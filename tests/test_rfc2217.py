"""`esptiny bench --port rfc2217://127.0.0.1:PORT` end to end: pyserial's RFC 2217 server
(serial.rfc2217.PortManager, as in pyserial's rfc2217_server example) on loopback, in front
of the virtual board's pseudo-terminal; every output equals TFLite-Micro's."""
import json
import shutil
import socket
import threading

import pytest
import serial
import serial.rfc2217
from click.testing import CliRunner
from esptiny.cli import main
from esptiny.devices import sim
from esptiny.stages.run import Run

N = 100


class PtySerial(serial.Serial):
    """A pseudo-terminal has no modem lines: setting DTR/RTS does nothing, CTS/DSR/RI/CD
    read low (a real UART's server would have them)."""

    def _update_dtr_state(self):
        pass

    def _update_rts_state(self):
        pass

    cts = dsr = ri = cd = property(lambda self: False)


class _Writer:
    """What PortManager writes its negotiation replies to (pyserial's example does this)."""

    def __init__(self, conn):
        self.conn = conn

    def write(self, data):
        self.conn.sendall(data)


class Rfc2217Server:
    """One TCP listener on 127.0.0.1; each connection gets the serial port through a
    PortManager until it closes. Stops by itself when the test closes it."""

    def __init__(self, device_path: str):
        self.device_path = device_path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.connections = 0
        self.errors = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            self.connections += 1
            try:
                self._session(conn)
            except Exception as e:  # reported by the test
                self.errors.append(repr(e))
            finally:
                conn.close()

    def _session(self, conn):
        ser = PtySerial(self.device_path, timeout=0.01)
        conn.settimeout(0.01)
        pm = serial.rfc2217.PortManager(ser, _Writer(conn))
        try:
            while not self.stop.is_set():
                data = ser.read(ser.in_waiting or 1)
                if data:
                    conn.sendall(b"".join(pm.escape(data)))
                try:
                    got = conn.recv(65536)
                except socket.timeout:
                    continue
                if not got:
                    return  # the client closed the port
                ser.write(b"".join(pm.filter(got)))
        finally:
            ser.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def run(tiny_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(tiny_run.path, dst)
    return Run(dst)


def test_bench_over_rfc2217(run):
    with sim.start(run.variant_path("int8"), sim.SimOptions(), run.path / "build" / "sim") as pty:
        server = Rfc2217Server(pty)
        try:
            url = f"rfc2217://127.0.0.1:{server.port}"
            r = CliRunner().invoke(main, ["bench", str(run.path), "--variant", "int8",
                                          "--port", url, "-n", str(N)])
        finally:
            server.close()
    assert r.exit_code == 0, (r.output, server.errors)
    assert server.connections >= 1 and not server.errors, server.errors
    label = f"rfc2217-127.0.0.1-{server.port}"
    doc = json.loads(run.file(run.stage("bench")["results"][f"int8@{label}"]["path"]).read_text())
    assert doc["images"] == N and doc["boards"][label]["images_this_run"] == N
    assert doc["device_vs_tflm"]["identical_outputs"] == 1.0
    assert doc["boards"][label]["info"]["chip"] == "virtual-esp32"
