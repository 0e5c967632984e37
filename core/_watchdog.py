"""Ends the Ray processes a driver started once the driver is gone (exit or kill -9).

Run as a script (``python _watchdog.py DRIVER_PID TEMP_DIR``) in its own session by the
executor that started a local Ray; it imports only psutil, so it starts in tens of
milliseconds. Ray ties its GCS and raylet to the driver, but its agents and idle
workers, reparented to init, otherwise live on for a minute or more. Every
half second the watchdog notes the processes naming the driver's Ray temp folder and their
descendants (with their start times, so a reused pid is never touched); within a
quarter of a second of the driver's end it ends those still running (SIGTERM, then
SIGKILL after two seconds) and removes the temp folder. A process started in the
last half second before the driver died may be missed: Ray's workers and agents
also end by themselves once their raylet is gone, only more slowly.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import psutil


def _snapshot(temp_dir: str, seen: dict[int, float]) -> None:
    me = os.getpid()
    uid = os.getuid()
    for proc in psutil.process_iter(["cmdline", "uids"]):
        try:
            if proc.pid == me or proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            if any(temp_dir in part for part in proc.info["cmdline"] or ()):
                seen.setdefault(proc.pid, proc.create_time())
                for child in proc.children(recursive=True):
                    seen.setdefault(child.pid, child.create_time())
        except psutil.Error:
            continue


def _end(seen: dict[int, float]) -> None:
    procs = []
    for pid, created in seen.items():
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) < 0.01:
                procs.append(proc)
        except psutil.Error:
            continue
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=2.0)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass


def main(argv: list[str]) -> None:
    driver_pid, temp_dir = int(argv[0]), argv[1]
    try:
        driver = psutil.Process(driver_pid)
    except psutil.Error:
        return
    started = driver.create_time()
    seen: dict[int, float] = {}
    next_scan = 0.0
    while True:
        try:
            gone = not driver.is_running() or driver.status() == psutil.STATUS_ZOMBIE
            gone = gone or abs(driver.create_time() - started) > 0.01
        except psutil.Error:
            gone = True
        if gone:
            _end(seen)
            shutil.rmtree(temp_dir, ignore_errors=True)  # its token and Ray's files
            return
        if time.monotonic() >= next_scan:
            _snapshot(temp_dir, seen)
            next_scan = time.monotonic() + 0.5
        time.sleep(0.25)


if __name__ == "__main__":
    main(sys.argv[1:])
