"""Connects to a real coiled-local cluster as a Dask client would, with the TLS material the API
returns, and computes a sum over a range scattered across its workers.

Usage: python dask_connect.py DETAILS.json ADDRESS TIMEOUT_SECONDS [WORKERS]
With WORKERS, first waits (up to the timeout) until that many workers are connected: a cluster is
ready once the fraction of its workers it waits for has started, and the others may still connect.
Prints `SUM <n> WORKERS <k>` on success; exits 3 when the connection fails.
"""
import sys

from distributed import Client

import cluster_security


def main() -> None:
    address, timeout = sys.argv[2], float(sys.argv[3])
    security = cluster_security.security_of(sys.argv[1])
    try:
        client = Client(address, security=security, timeout=timeout)
    except OSError as e:
        print(f"REFUSED {e}")
        sys.exit(3)
    if len(sys.argv) > 4:
        try:
            client.wait_for_workers(int(sys.argv[4]), timeout=timeout)
        except TimeoutError:
            pass  # computed on the workers there are; the count printed shows the shortfall
    futures = client.scatter(list(range(1000)), direct=False)
    total = client.submit(sum, futures).result()
    print(f"SUM {total} WORKERS {len(client.scheduler_info()['workers'])}")
    client.close()


if __name__ == "__main__":
    main()
