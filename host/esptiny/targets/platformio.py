"""`esptiny build` and `esptiny flash`: PlatformIO's `pio run` on an exported project,
with failures as one line.

PlatformIO installs the ESP32 platform, ESP-IDF and its toolchains from its registry on
the first build. Offline, pio 6.1 does not say so quickly: its HTTP client retries with
back-off for about a minute and then prints a bare "HTTPClientError:". So before running
pio we look for the pinned platform in PlatformIO's platforms directory and, when it
is missing, check that the registry answers; if not, we stop at once with one line.
"""
from __future__ import annotations

import collections
import configparser
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from .. import toolchain
from ..errors import UserError

REGISTRY_HOST = "api.registry.platformio.org"  # platformio.registry.client: https://api.<mirror>
REGISTRY_PORT = 443
TAIL_LINES = 200

# pio's words for "the network is not there".
_OFFLINE = re.compile(r"HTTPClientError|InternetConnectionError|ConnectionError|Could not resolve|"
                      r"Name or service not known|Temporary failure in name resolution|"
                      r"Max retries exceeded|Network is unreachable", re.I)
_INSTALLING = re.compile(r"(Platform|Tool|Package|Library) Manager: Installing (.+)")
_ERROR = re.compile(r"error|failed|not found|unknown|could not|cannot|no such|undefined reference|"
                    r"overflow|does not fit|too small|denied|timed out", re.I)
_NOISE = re.compile(r"^\s*$|^[=\-*_ ]+$|\[(FAILED|ERROR|SUCCESS|IGNORED)\]\s+Took|^Environment\s+Status|"
                    r"^Processing |^Verbose mode|^(CONFIGURATION|PLATFORM|HARDWARE|PACKAGES|DEBUG):|"
                    r"If you like PlatformIO|star it on GitHub|follow us on|try PlatformIO IDE|"
                    r"^\s*- |^=+ \d+ (failed|succeeded)")


def find_pio() -> str:
    """pio beside the running Python (esptiny's venv), else on PATH."""
    here = Path(sys.executable).parent
    for name in ("pio", "platformio"):
        if (here / name).is_file() and os.access(here / name, os.X_OK):
            return str(here / name)
    for name in ("pio", "platformio"):
        found = shutil.which(name)
        if found:
            return found
    raise UserError("PlatformIO's `pio` was not found beside this Python or on PATH; "
                    "install it with `pip install platformio` (esptiny depends on it)")


def project_platform(project: Path) -> tuple:
    """(name, version or None) of the platform a project's platformio.ini asks for."""
    cfg = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    cfg.read(project / "platformio.ini")
    value = None
    for section in ["env"] + [s for s in cfg.sections() if s.startswith("env:")]:
        if cfg.has_option(section, "platform"):
            value = cfg.get(section, "platform")
            break
    if not value:
        return None, None
    name, _, version = (p.strip() for p in value.partition("@"))
    return name.split("/")[-1], (version or None)


def platforms_dir() -> Path:
    if os.environ.get("PLATFORMIO_PLATFORMS_DIR"):
        return Path(os.environ["PLATFORMIO_PLATFORMS_DIR"])
    core = os.environ.get("PLATFORMIO_CORE_DIR") or Path.home() / ".platformio"
    return Path(core) / "platforms"


def platform_installed(name: str, version: str | None) -> bool:
    root = platforms_dir()
    if not root.is_dir():
        return False
    for manifest in root.glob("*/platform.json"):
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if data.get("name") == name and (version is None or data.get("version") == version):
            return True
    return False


def registry_reachable(timeout: float = 3.0) -> str | None:
    """None when PlatformIO's registry answers (HTTPS), else why not."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # through a proxy: let pio find out
    try:
        socket.create_connection((REGISTRY_HOST, REGISTRY_PORT), timeout=timeout).close()
        return None
    except OSError as e:
        return str(e) or type(e).__name__


def summarize(lines: list) -> str:
    """The line that says why pio failed: the compiler's or linker's first error if there
    is one, else the last error-looking line that is not decoration; an unreachable
    registry named as such, with what pio was installing."""
    text = [ln.rstrip() for ln in lines]
    installing = [m.group(2) for m in map(_INSTALLING.search, text) if m]
    if any(_OFFLINE.search(ln) for ln in text[-20:]):
        what = f" to install {installing[-1]}" if installing else ""
        return (f"PlatformIO could not reach its registry{what} (offline?); connect once so it "
                f"can download the platform, ESP-IDF and the components, then build again")
    useful = [ln.strip() for ln in text if not _NOISE.search(ln)]
    compiler = toolchain.compiler_errors(useful)  # the compiler's first word, not make's last
    errors = [ln for ln in useful if _ERROR.search(ln)]
    line = compiler[0] if compiler else (errors or useful or ["no output"])[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def _stop(proc):
    """End pio and whatever it started (its own process group), by id."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_pio(project, args: list, echo=None, timeout: float | None = None, precheck: bool = True) -> list:
    """Run `pio run -d PROJECT ARGS`; its output lines, or a one-line UserError."""
    project = Path(project)
    if not (project / "platformio.ini").is_file():
        raise UserError(f"{project}: no platformio.ini (export a project with `esptiny export RUN`)")
    pio = find_pio()
    if precheck:
        name, version = project_platform(project)
        if name and not platform_installed(name, version):
            why = registry_reachable()
            if why:
                raise UserError(f"PlatformIO must download the {name} {version or ''} platform, ESP-IDF and "
                                f"its toolchains, but its registry ({REGISTRY_HOST}) is unreachable ({why}); "
                                f"build where the internet is reachable (or in CI: .github/workflows/firmware.yml)")
    cmd = [pio, "run", "-d", str(project), *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, text=True, errors="replace", start_new_session=True)
    tail = collections.deque(maxlen=TAIL_LINES)

    def pump():
        for line in proc.stdout:
            tail.append(line)
            if echo:
                echo(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        reader.join(5)
        raise UserError(f"`pio run` did not finish within {timeout:g} s; its last words: "
                        f"{summarize(list(tail))}") from None
    except KeyboardInterrupt:
        _stop(proc)
        raise
    reader.join(5)
    if rc != 0:
        raise UserError(f"`{' '.join(['pio', 'run', *args])}` failed: {summarize(list(tail))}")
    return list(tail)


def build(project, env: str | None = None, echo=None, timeout: float | None = None) -> list:
    return run_pio(project, ["-e", env] if env else [], echo=echo, timeout=timeout)


def flash(project, port: str, env: str | None = None, echo=None, timeout: float | None = None) -> list:
    if not port:
        raise UserError("--port is required: the serial port the board is on (e.g. /dev/ttyUSB0, COM3)")
    args = (["-e", env] if env else []) + ["-t", "upload", "--upload-port", port]
    return run_pio(project, args, echo=echo, timeout=timeout)
