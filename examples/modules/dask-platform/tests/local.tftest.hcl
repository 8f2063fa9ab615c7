# Runs against a Coiled control plane: the provider is configured from COILED_SERVER and COILED_TOKEN
# (coiled-local in this repository's tests). Every run applies; the test destroys what it made.

variables {
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "example-secret"
}

run "the_platform_comes_up" {
  assert {
    condition     = output.environments["etl"] == "built"
    error_message = "the environment is built before its cluster starts"
  }
  assert {
    condition     = startswith(coalesce(output.scheduler_addresses["etl"], "none"), "tls://")
    error_message = "the cluster has an address for Dask clients"
  }
  assert {
    condition     = length(try([for r in output.firewall_rules["etl"] : r if r.port == 443 && r.source == "10.1.0.0/16"], [])) > 0
    error_message = "the cluster takes the account default, which opens 443 to the VPN"
  }
}

run "scaling_changes_the_cluster_in_place" {
  variables {
    clusters = {
      etl = { n_workers = 3, environment = "etl", private = true }
    }
  }

  assert {
    condition     = output.cluster_ids["etl"] == run.the_platform_comes_up.cluster_ids["etl"]
    error_message = "scaling keeps the cluster"
  }
}
