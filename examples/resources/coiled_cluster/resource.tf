# A cluster with its own firewall: the scheduler port to one network, the dashboard to another,
# reached over the private network.
resource "coiled_cluster" "etl" {
  name      = "etl"
  n_workers = 4
  software  = "etl-env" # or: container = "ghcr.io/dask/dask:latest"

  backend_options {
    region = "us-east-1"

    ingress {
      ports = [443, 8786]
      cidr  = "10.1.0.0/16" # client -> scheduler (443 on current Coiled, 8786 on older releases)
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

# The options teams set most, sent as coiled.Cluster(...) sends them. `scheduler_port` with
# `allow_ingress_from` makes the cluster's firewall (the port, 443 and 15003 from that network), as the
# client does; it cannot be combined with ingress blocks. Clients on that private network reach the
# scheduler at its private address.
resource "coiled_cluster" "adhoc" {
  name                    = "adhoc"
  software                = "etl-env"
  spot_policy             = "spot_with_fallback"
  scheduler_port          = 8786
  allow_ingress_from      = "10.1.0.0/16"
  use_scheduler_public_ip = false
  cluster_timeout         = "8 hours"
  when_stopped            = "keep"
}

output "scheduler_address" {
  value = coiled_cluster.etl.scheduler_address
}
