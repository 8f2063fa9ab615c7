# The scenario of Coiled's "Configuring firewalls" guide, as code.
#
# `scripts/quickstart.sh` applies this against coiled-local, the local control plane. To apply it to
# the real Coiled instead, unset COILED_SERVER, log in with `coiled login` (or set COILED_TOKEN), set
# real AWS keys in the variables below, and run `terraform apply` here.

terraform {
  required_providers {
    coiled = {
      source = "coiled/coiled"
    }
  }
}

# Server, token and workspace come from the environment (COILED_SERVER, COILED_TOKEN, ...).
provider "coiled" {}

variable "aws_access_key_id" {
  description = "AWS access key Coiled uses to create clusters (any value works with coiled-local)."
  type        = string
  default     = "AKIA-QUICKSTART-EXAMPLE"
  sensitive   = true
}

variable "aws_secret_access_key" {
  description = "AWS secret key (any value works with coiled-local)."
  type        = string
  default     = "quickstart-example-secret"
  sensitive   = true
}

# Account-level default for all new clusters: Dask's ports from 10.1.0.0/16 only. The guide's 8786
# (scheduler) and 8787 (dashboard) are the ports of older Coiled releases; today's Coiled serves the
# scheduler and the dashboard on 443, so the rule opens it too (the plan warns when no rule admits the
# port a scheduler listens on).
resource "coiled_backend_options" "account" {
  backend               = "aws"
  region                = "us-east-1"
  aws_access_key_id     = var.aws_access_key_id
  aws_secret_access_key = var.aws_secret_access_key

  ingress {
    ports = [443, 8786, 8787]
    cidr  = "10.1.0.0/16"
  }
}

# A cluster that overrides it: scheduler from one network, dashboard from another, and the client
# connects over the private network.
resource "coiled_cluster" "etl" {
  name      = "quickstart-etl"
  n_workers = 2
  # A software environment coiled-local has from the start (scripts/quickstart.sh names it).
  software = "dask"

  backend_options {
    ingress {
      ports = [443, 8786]
      cidr  = "10.1.0.0/16" # client -> scheduler (443 today, 8786 on older releases)
    }
    ingress {
      ports = [8787]
      cidr  = "10.32.0.0/16" # scheduler dashboard
    }
  }

  use_scheduler_public_ip = false

  depends_on = [coiled_backend_options.account]
}

locals {
  header = format("%-8s  %-5s  %s", "Protocol", "Port", "Source")
}

output "account_firewall" {
  description = "Rules every new cluster in the workspace gets by default."
  value       = join("\n", concat([local.header], flatten([for b in coiled_backend_options.account.ingress : [for p in b.ports : format("%-8s  %-5d  %s", "tcp", p, b.cidr)]])))
}

output "cluster_firewall" {
  description = "Rules that apply to the etl cluster: its own ingress blocks, overriding the account default."
  value       = join("\n", concat([local.header], flatten([for b in coiled_cluster.etl.backend_options.ingress : [for p in b.ports : format("%-8s  %-5d  %s", "tcp", p, b.cidr)]])))
}

output "scheduler_address" {
  description = "Where a Dask client connects: the private address, since use_scheduler_public_ip = false."
  value       = coiled_cluster.etl.scheduler_address
}

output "dashboard_address" {
  description = "The dashboard's URL, which carries its access token: `terraform output -raw dashboard_address` shows it."
  value       = coiled_cluster.etl.dashboard_address
  sensitive   = true
}

output "cluster_id" {
  description = "Coiled's id of the cluster."
  value       = coiled_cluster.etl.id
}
