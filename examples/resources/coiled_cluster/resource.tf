# A cluster with its own firewall: the scheduler port to one network, the dashboard to another,
# reached over the private network.
resource "coiled_cluster" "etl" {
  name      = "etl"
  n_workers = 4
  software  = "etl-env" # or: container = "ghcr.io/dask/dask:latest"

  backend_options {
    region = "us-east-1"

    ingress {
      ports = [8786]
      cidr  = "10.1.0.0/16" # client -> scheduler
    }
    ingress {
      ports = [8787]
      cidr  = "10.32.0.0/16" # scheduler dashboard
    }
  }

  use_scheduler_public_ip = false
  idle_timeout            = "2 hours"

  tags = {
    team = "data"
  }

  timeouts {
    create = "30m"
  }
}

output "scheduler_address" {
  value = coiled_cluster.etl.scheduler_address
}
