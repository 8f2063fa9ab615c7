"""A Dask client's TLS settings for a Coiled (or coiled-local) cluster, from the certificate and key
the API returns, as Coiled's `GatewaySecurity` makes them: the certificate is the client's own and the
authority the scheduler's is checked against."""
import json
import os
import tempfile

from distributed.security import Security


def security(cert_pem: str, key_pem: str) -> Security:
    tmp = tempfile.mkdtemp()
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    with open(cert, "w") as f:
        f.write(cert_pem)
    with open(key, "w") as f:
        f.write(key_pem)
    return Security(tls_ca_file=cert, tls_client_cert=cert, tls_client_key=key, require_encryption=True)


def security_of(details_path: str) -> Security:
    """The security for the cluster whose details (`GET …/id/{id}`, as JSON) are in `details_path`."""
    options = json.load(open(details_path))["cluster_options"]
    return security(options["tls_cert"], options["tls_key"])
