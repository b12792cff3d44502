"""The device end of a serial link for a device esptiny serves from this host: a
pseudo-terminal (the host opens its path as a serial port) or a TCP listener (pyserial's
socket://). Both say when a host opened the port, which resets a dev board."""
from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import termios
import time
import tty
from urllib.parse import urlparse

from ..errors import UserError

TIOCPKT = getattr(termios, "TIOCPKT", 0x5420)
TIOCPKT_FLUSHREAD = 1


class PtyTransport:
    """The device end of a pseudo-terminal; the host opens `path` as a serial port.

    A pty has no DTR/RTS, so "the host opened the port" (which resets a dev board) is
    seen two ways: the master stops reporting a hang-up, and, in packet mode, the input
    flush pyserial does on open arrives as a TIOCPKT_FLUSHREAD packet; that one also
    catches a close and reopen too quick for the hang-up to be seen."""

    def __init__(self):
        self.master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing, no CR/LF translation
        self.path = os.ttyname(slave)
        os.close(slave)  # so that the master sees a hang-up until a host opens the path
        os.set_blocking(self.master, False)
        fcntl.ioctl(self.master, TIOCPKT, struct.pack("i", 1))
        self.url = self.path
        self.flushed = False

    def wait_host(self, stop) -> bool:
        """Block until a host has the slave open (the master stops reporting POLLHUP)."""
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        while not stop():
            if not any(ev & select.POLLHUP for _, ev in poller.poll(0)):
                self._drain()  # what the open left (its flush packet) is history now
                return True
            time.sleep(0.01)
        return False

    def _drain(self):
        while True:
            try:
                os.read(self.master, 65537)
            except OSError:  # EAGAIN: empty (EIO: gone again; the session will see it)
                break
        self.flushed = False

    def fileno(self):
        return self.master

    def read(self) -> bytes | None:
        try:
            packet = os.read(self.master, 65537)
        except BlockingIOError:
            return b""
        except OSError:  # EIO: the host closed the port
            return None
        if packet[:1] == b"\x00":  # packet mode: data
            return packet[1:]
        if packet and packet[0] & TIOCPKT_FLUSHREAD:
            self.flushed = True
        return b""

    def write(self, data: bytes) -> int | None:
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0
        except OSError:
            return None

    def hung_up(self) -> bool:
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        return any(ev & select.POLLHUP for _, ev in poller.poll(0))

    def end_session(self):
        pass

    def close(self):
        os.close(self.master)


class SocketTransport:
    """A TCP listener: each connection is a host opening the port (pyserial socket://)."""

    def __init__(self, url: str):
        u = urlparse(url)
        if u.scheme != "socket" or not u.hostname:
            raise UserError(f"--listen takes socket://HOST:PORT, not {url}")
        self.server = socket.create_server((u.hostname, u.port or 0))
        host, port = self.server.getsockname()[:2]
        self.url = f"socket://{host}:{port}"
        self.conn = None

    def wait_host(self, stop) -> bool:
        self.server.settimeout(0.1)
        while not stop():
            try:
                self.conn, _ = self.server.accept()
            except (TimeoutError, socket.timeout):
                continue
            self.conn.setblocking(False)
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return True
        return False

    def fileno(self):
        return self.conn.fileno()

    def read(self) -> bytes | None:
        try:
            data = self.conn.recv(65536)
        except BlockingIOError:
            return b""
        except OSError:
            return None
        return data or None  # b"" from recv means the peer closed

    def write(self, data: bytes) -> int | None:
        try:
            return self.conn.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            return None

    def hung_up(self) -> bool:
        return False

    def end_session(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self):
        self.end_session()
        self.server.close()
