terraform {
  required_providers {
    coiled = {
      source = "coiled/coiled"
    }
  }
}

# The token is best left out of the configuration: the provider reads COILED_TOKEN, then
# DASK_COILED__TOKEN, then ~/.config/dask/coiled.yaml (written by `coiled login`).
provider "coiled" {
  workspace = "my-team"

  # Defaults for every coiled_cluster that sets none of its own, as ~/.config/dask/coiled.yaml sets them
  # for Coiled's Python client (which the provider never reads for a plan). Plans show the values.
  cluster_defaults {
    use_scheduler_public_ip = false
    tags                    = { managed-by = "terraform" }
    ingress {
      ports = [443]
      cidr  = "10.1.0.0/16"
    }
  }
}
