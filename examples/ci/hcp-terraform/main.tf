# HCP Terraform or Terraform Enterprise: plans and applies run remotely, in the workspace the `cloud`
# block names. The provider comes from the organization's private registry (publish each release's
# archives, SHA256SUMS and its signature there), or, on self-hosted agents without access to a
# registry, from the filesystem mirror that agent.tfrc sets up. The workspace (or a variable set)
# holds COILED_TOKEN as a sensitive environment variable, and COILED_WORKSPACE.
terraform {
  cloud {
    organization = "example-org"

    workspaces {
      name = "dask-platform"
    }
  }

  required_providers {
    coiled = {
      source  = "app.terraform.io/example-org/coiled"
      version = "~> 0.1"
    }
  }
}

provider "coiled" {}

resource "coiled_cluster" "etl" {
  name      = "etl"
  software  = "dask"
  n_workers = 2

  # Reached from the organization's network, on the scheduler's private address.
  use_scheduler_public_ip = false

  backend_options {
    ingress {
      ports = [443, 8787]
      cidr  = "10.1.0.0/16"
    }
  }
}
