"""The public `coiled` client, run inside a lab network against coiled-local with real clusters:
creates a cluster with private-network ingress, computes on it, scales it and closes it.

Usage: python coiled_in_lab.py NAME   with DASK_COILED__SERVER / DASK_COILED__TOKEN set.
Prints `SUM <n>` and `WORKERS <k>` lines.
"""
import sys

import coiled
from distributed import Client


def main(name: str) -> None:
    cluster = coiled.Cluster(
        name=name,
        n_workers=2,
        software="dask",
        backend_options={"ingress": [{"ports": [443], "cidr": "10.1.0.0/16"}]},
        use_scheduler_public_ip=False,
        wait_for_workers=True,
        timeout=120,
    )
    client = Client(cluster)
    futures = client.scatter(list(range(1000)), direct=False)
    print(f"SUM {client.submit(sum, futures).result()}", flush=True)
    cluster.scale(3)
    client.wait_for_workers(3, timeout=120)
    print(f"WORKERS {len(client.scheduler_info()['workers'])}", flush=True)
    client.close()
    cluster.close()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
