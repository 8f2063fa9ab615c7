# Runs without Coiled: the provider is mocked, so only the module's own logic is checked.
mock_provider "coiled" {}

variables {
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "example-secret"
  environments = {
    etl = { conda = ["python=3.12", "dask"], pip = [] }
    ml  = { conda = ["python=3.12", "dask"], pip = ["xgboost>=2"] }
  }
  clusters = {
    etl   = { n_workers = 2, environment = "etl", private = true }
    train = { n_workers = 4, environment = "ml", private = false }
  }
}

run "one_cluster_per_entry_on_its_environment" {
  command = plan

  assert {
    condition     = length(coiled_cluster.this) == 2 && coiled_cluster.this["train"].n_workers == 4
    error_message = "one cluster per entry of var.clusters, with its worker count"
  }
  assert {
    condition     = coiled_cluster.this["etl"].use_scheduler_public_ip == false && coiled_cluster.this["train"].use_scheduler_public_ip == true
    error_message = "private clusters connect over the private network"
  }
  assert {
    condition     = coiled_software_environment.this["etl"].pip == null && length(coiled_software_environment.this["ml"].pip) == 1
    error_message = "an empty pip list is left out"
  }
}

run "the_firewall_opens_the_schedulers_to_the_vpn" {
  command = plan

  assert {
    condition     = contains([for rule in coiled_backend_options.this[0].ingress : rule.cidr if contains(rule.ports, 443)], "10.1.0.0/16")
    error_message = "the VPN reaches the schedulers on 443"
  }
}

run "backend_options_can_be_left_to_another_configuration" {
  command = plan

  variables {
    manage_backend_options = false
  }

  assert {
    condition     = length(coiled_backend_options.this) == 0
    error_message = "no backend options when another configuration owns them"
  }
}
