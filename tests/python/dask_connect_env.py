"""Connects to a cluster with what `coiled_cluster_connection` gives (environment variables
COILED_ADDRESS, COILED_TLS_CERT, COILED_TLS_KEY, as a Terraform provisioner passes them), computes a sum
over data scattered across the workers, and writes `SUM <n> WORKERS <k>` to the file named by argv[1]
(Terraform hides the output of a provisioner that uses ephemeral values).
"""
import os
import sys

from distributed import Client

import cluster_security


def main(result_path: str) -> None:
    security = cluster_security.security(os.environ["COILED_TLS_CERT"], os.environ["COILED_TLS_KEY"])
    with Client(os.environ["COILED_ADDRESS"], security=security, timeout=10) as client:
        futures = client.scatter(list(range(1000)), direct=False)
        total = client.submit(sum, futures).result()
        workers = len(client.scheduler_info()["workers"])
    with open(result_path, "w") as f:
        f.write(f"SUM {total} WORKERS {workers}\n")


if __name__ == "__main__":
    main(sys.argv[1])
