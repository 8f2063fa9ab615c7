"""Keeps a real coiled-local cluster busy: connects as a Dask client and runs one task that sleeps.

Usage: python dask_busy.py DETAILS.json ADDRESS SECONDS
Prints `DONE` once the task has run to its end.
"""
import sys
import time

from distributed import Client

import cluster_security


def main() -> None:
    address, seconds = sys.argv[2], float(sys.argv[3])
    security = cluster_security.security_of(sys.argv[1])
    client = Client(address, security=security, timeout=30)
    client.submit(time.sleep, seconds, pure=False).result()
    print("DONE")
    client.close(timeout=5)


if __name__ == "__main__":
    main()
