"""Drives the public `coiled` client (1.135.6) for the differential test: the same arguments as the
Terraform configurations in tests/it/differential.rs. What it sends is read back from coiled-local's
request log; this script only makes the calls.

Usage: python differential.py STEP   with DASK_COILED__SERVER / DASK_COILED__TOKEN set.
"""
import sys

import coiled


def main(step: str) -> None:
    if step == "backend-options":
        coiled.set_backend_options(
            backend="aws",
            aws_access_key_id="AKIAEXAMPLE",
            aws_secret_access_key="SECRET-SENTINEL-DIFF",
            aws_region="us-west-2",
            ingress=[{"ports": [8786, 8787], "cidr": "10.1.0.0/16"}, {"ports": [8786], "cidr": "10.2.0.0/16"}],
        )
    elif step == "cluster":
        try:
            coiled.Cluster(
                name="diff",
                n_workers=2,
                software="my-env",
                worker_vm_types=["m6i.large"],
                scheduler_vm_types=["m6i.xlarge"],
                tags={"team": "data", "empty": "", "cost": 42},
                idle_timeout="2 hours",
                backend_options={"region_name": "us-west-2", "ingress": [{"ports": [8786], "cidr": "10.1.0.0/16"}]},
                use_scheduler_public_ip=False,
                timeout=60,
            )
        except Exception as e:  # no Dask scheduler answers here: the create has been sent by then
            print(f"stopped after the create: {type(e).__name__}", file=sys.stderr)
    else:
        raise SystemExit(f"unknown step {step}")


if __name__ == "__main__":
    main(sys.argv[1])
