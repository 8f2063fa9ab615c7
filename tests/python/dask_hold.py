"""Holds data on a real coiled-local cluster while something else changes it: connects as a Dask client
with the TLS material the API returns, waits for WORKERS workers, scatters a range across them, prints
`READY`, waits for a line on standard input, then gathers the range and prints
`SUM <n> WORKERS <k>`.

Usage: python dask_hold.py DETAILS.json ADDRESS WORKERS
"""
import sys

from distributed import Client

import cluster_security


def main() -> None:
    address, workers = sys.argv[2], int(sys.argv[3])
    security = cluster_security.security_of(sys.argv[1])
    client = Client(address, security=security, timeout=60)
    client.wait_for_workers(workers, timeout=120)
    futures = client.scatter(list(range(600)))
    held = {w for ws in client.who_has(futures).values() for w in ws}
    print(f"READY ON {len(held)}", flush=True)
    sys.stdin.readline()
    print(f"SUM {sum(client.gather(futures))} WORKERS {len(client.scheduler_info()['workers'])}", flush=True)
    client.close()


if __name__ == "__main__":
    main()
