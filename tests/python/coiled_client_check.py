"""Drives the public `coiled` Python client against a running coiled-local.

Usage: python coiled_client_check.py STEP RESULT_FILE   with DASK_COILED__SERVER / DASK_COILED__TOKEN set.
Each step writes one JSON object with what it observed to RESULT_FILE (the client prints its own
progress on stdout); the Rust test asserts on it.
"""
import asyncio
import json
import sys

import coiled


def out(**kw):
    with open(sys.argv[2], "w") as f:
        json.dump(kw, f)


def main(step: str) -> None:
    if step == "list":
        clusters = coiled.list_clusters()
        out(names=sorted(c["name"] for c in clusters), count=len(clusters))
    elif step == "by-name":
        out(id=coiled.Cloud().get_cluster_by_name("existing"))
    elif step == "missing-name":
        try:
            coiled.Cloud().get_cluster_by_name("nope")
            out(raised=None)
        except Exception as e:  # the client raises DoesNotExist
            out(raised=type(e).__name__)
    elif step == "stop":
        coiled.delete_cluster(name="existing")
        out(stopped=True)
    elif step == "set-gcp":
        coiled.set_backend_options(
            backend="gcp",
            gcp_service_creds_dict={"type": "service_account", "project_id": "my-proj", "private_key_id": "x", "client_email": "a@b"},
            gcp_region="us-central1",
            ingress=[{"ports": [8786, 8787], "cidr": "10.1.0.0/16"}],
        )
        out(done=True)
    elif step == "set-aws":
        coiled.set_backend_options(
            backend="aws",
            aws_access_key_id="AKIAEXAMPLE",
            aws_secret_access_key="SECRET-SENTINEL-PY",
            aws_region="us-west-2",
            ingress=[{"ports": [8786], "cidr": "10.2.0.0/16"}],
        )
        out(done=True)
    elif step == "set-invalid":
        try:
            coiled.Cloud().set_backend_options({"backend": "vm", "options": {"provider_name": "aws", "credentials": {"aws_access_key": "k", "aws_secret_key": "s"}, "firewall_spec": {"ingress": [{"ports": [8786], "cidr": "10.0.0.300/8"}]}}})
            out(raised=None)
        except Exception as e:
            out(raised=type(e).__name__, message=str(e))
    elif step == "read":
        async def read():
            async with coiled.Cloud(asynchronous=True) as cloud:
                return await cloud.get_backend_options()
        out(options=asyncio.run(read()))
    else:
        raise SystemExit(f"unknown step {step}")


if __name__ == "__main__":
    main(sys.argv[1])
