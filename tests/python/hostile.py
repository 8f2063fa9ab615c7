"""Runs hostile tasks on a real coiled-local cluster, as whoever holds a workspace token could, and
prints what each achieved as one JSON object.

Usage: python hostile.py DETAILS.json ADDRESS TARGETS.json probe|hog
`probe` runs every attempt on a worker, and leaves a `setsid` process behind on the worker and on
the scheduler; `hog` takes more memory than a worker may have.
TARGETS names what belongs to others: {"files": [paths], "dirs": [paths], "open_dirs": [world-writable
paths on the host], "addresses": [[host, port]],
"pids": [host pids], "marker": "...", "memory_mib": n}.
"""
import json
import sys

from distributed import Client

import cluster_security


def probe(targets):
    """Runs on a worker: every attempt, and what came of it ("ok" or the error's name)."""
    import ctypes
    import os
    import socket
    import subprocess

    out = {}

    def attempt(name, fn):
        try:
            fn()
            out[name] = "ok"
        except Exception as e:  # noqa: BLE001 - the kind of refusal is the result
            out[name] = type(e).__name__

    for i, path in enumerate(targets["files"]):
        attempt(f"read {path}", lambda p=path: open(p, "rb").read(1))
    for path in targets["dirs"]:
        attempt(f"list {path}", lambda p=path: os.listdir(p))
        attempt(f"write in {path}", lambda p=path: open(os.path.join(p, "planted"), "w").close())
        attempt(f"plant a link in {path}", lambda p=path: os.symlink("/etc/passwd", os.path.join(p, "planted.pem")))
    for path in targets["open_dirs"]:
        attempt(f"write in {path}", lambda p=path: open(os.path.join(p, "planted"), "w").close())
    attempt("plant a link in its own directory", lambda: os.symlink("/etc/passwd", "planted.pem"))
    attempt("replace its own certificate", lambda: open("cert.pem", "w").write("planted"))
    for host, port in targets["addresses"]:
        attempt(f"connect {host}:{port}", lambda h=host, p=port: socket.create_connection((h, p), timeout=2).close())
    libc = ctypes.CDLL(None, use_errno=True)
    for pid in targets["pids"]:
        def ptrace(p=pid):
            if libc.ptrace(16, p, None, None) != 0:  # PTRACE_ATTACH
                raise OSError(ctypes.get_errno(), "ptrace")
        attempt(f"ptrace {pid}", ptrace)
        attempt(f"kill {pid}", lambda p=pid: os.kill(p, 9))
    others = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid != os.getuid():
                    others.append(entry)
            except OSError:
                pass
    out["processes of other users seen"] = len(others) - 1  # PID 1, root's, starts this process
    out["uid"] = os.getuid()
    # System V shared memory, left behind on purpose: it must be private, and end with the process.
    libc.shmget.restype = ctypes.c_int
    out["shared memory made"] = "ok" if libc.shmget(0x0C0FFEE, 1 << 20, 0o1000 | 0o666) >= 0 else "refused"
    # Escapes: a process in a session of its own, and a tree deeper than a recursive walk survives.
    escape(targets["marker"])

    def deep_tree():
        fd = os.open("/tmp", os.O_RDONLY)
        for _ in range(30000):
            os.mkdir("d", dir_fd=fd)
            new = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
        os.close(fd)

    attempt("a 30000-deep tree in /tmp", deep_tree)
    attempt("a tree in its own directory", lambda: os.mkdir("d"))
    return out


def escape(marker):
    """Starts a process in a session of its own, which outlives the process that started it."""
    import subprocess

    subprocess.Popen(["setsid", "sh", "-c", "sleep 1000; true", marker], start_new_session=True)


def hog(mib):
    """Runs on a worker: holds `mib` MiB, every page written."""
    block = b"x" * (mib * 1024 * 1024)
    return len(block)


def main() -> None:
    address, targets = sys.argv[2], json.load(open(sys.argv[3]))
    security = cluster_security.security_of(sys.argv[1])
    client = Client(address, security=security, timeout=30)
    client.wait_for_workers(1, timeout=30)
    if sys.argv[4] == "probe":
        result = client.submit(probe, targets, pure=False).result(timeout=120)
        client.run_on_scheduler(escape, targets["marker"])
    else:
        try:
            client.submit(hog, targets["memory_mib"], pure=False).result(timeout=15)
            result = {"memory beyond the limit": "ok"}
        except Exception as e:  # noqa: BLE001 - the worker dies: the scheduler reports it lost
            result = {"memory beyond the limit": type(e).__name__}
    print("RESULT " + json.dumps(result))
    client.close(timeout=5)


if __name__ == "__main__":
    main()
