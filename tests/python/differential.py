"""Drives the public `coiled` client (1.135.6) for the differential test: the same arguments as the
Terraform configurations in tests/it/differential.rs. What it sends is read back from coiled-local's
request log; this script only makes the calls.

Usage: python differential.py STEP [ARGS]   with DASK_COILED__SERVER / DASK_COILED__TOKEN set.
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
    elif step == "gcp-options":
        region, zone = (None if a == "-" else a for a in sys.argv[2:4])
        coiled.set_backend_options(
            backend="gcp",
            gcp_service_creds_dict={"type": "service_account", "project_id": "diff-proj", "private_key_id": "x", "client_email": "a@b"},
            gcp_project_id="diff-proj",
            gcp_region=region,
            zone=zone,
            gcp_zone=zone,
            ingress=[{"ports": [443], "cidr": "10.1.0.0/16"}],
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
    elif step == "software":
        coiled.create_software_environment(
            name="spec-env",
            conda={"channels": ["conda-forge"], "dependencies": ["python=3.11", "numpy>=1.26", "conda-forge::xarray"]},
            pip=["xgboost>=2", "--extra-index-url https://pypi.example.com/simple"],
        )
        coiled.create_software_environment(name="img-env", container="ghcr.io/dask/dask:latest", gpu_enabled=True)
        coiled.create_software_environment(name="arm-env", conda=["dask"], arm=True, use_uv_installer=False)
    elif step == "cluster-options":
        for kwargs in (
            dict(
                name="opts",
                spot_policy="spot_with_fallback",
                scheduler_port=8786,
                allow_ingress_from="10.1.0.0/16",
                cluster_timeout="8 hours",
                worker_disk_size="120GiB",
                use_dashboard_https=False,
                use_scheduler_public_ip=False,
            ),
            dict(name="on-arm", arm=True, spot_policy="on-demand"),
        ):
            try:
                coiled.Cluster(n_workers=1, software="my-env", timeout=60, **kwargs)
            except Exception as e:  # no Dask scheduler answers here: the create has been sent by then
                print(f"stopped after the create: {type(e).__name__}", file=sys.stderr)
    elif step == "workspace-config":
        # The workspace's Dask configuration (coiled-local --dask-config-overrides) sets the rest.
        for kwargs in (dict(name="ws-net", allow_ingress_from="10.1.0.0/16"), dict(name="ws-plain")):
            try:
                coiled.Cluster(n_workers=1, software="my-env", timeout=60, **kwargs)
            except Exception as e:  # no Dask scheduler answers here: the create has been sent by then
                print(f"stopped after the create: {type(e).__name__}", file=sys.stderr)
    else:
        raise SystemExit(f"unknown step {step}")


if __name__ == "__main__":
    main(sys.argv[1])
