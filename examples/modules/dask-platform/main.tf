# A workspace's Dask platform: account-wide firewall defaults, software environments and clusters
# that run them, from a few inputs.

# Every cluster that sets no rules of its own takes these, as coiled.set_backend_options(ingress=...)
# makes them: the VPN reaches the schedulers (443, 8786 on older releases), the office the dashboards
# (8787, or 443 for HTTPS dashboards: on current Coiled that port is the scheduler's too).
resource "coiled_backend_options" "this" {
  count = var.manage_backend_options ? 1 : 0

  workspace             = var.workspace
  backend               = "aws"
  region                = var.region
  aws_access_key_id     = var.aws_access_key_id
  aws_secret_access_key = var.aws_secret_access_key

  ingress {
    ports = [443, 8786]
    cidr  = var.vpn_cidr
  }
  ingress {
    ports = [443, 8787]
    cidr  = var.office_cidr
  }
}

resource "coiled_software_environment" "this" {
  for_each = var.environments

  workspace = var.workspace
  name      = each.key
  conda {
    channels     = ["conda-forge"]
    dependencies = each.value.conda
  }
  pip = length(each.value.pip) > 0 ? each.value.pip : null
}

resource "coiled_cluster" "this" {
  for_each = var.clusters

  workspace               = var.workspace
  name                    = each.key
  n_workers               = each.value.n_workers
  software                = coiled_software_environment.this[each.value.environment].name
  use_scheduler_public_ip = !each.value.private
  idle_timeout            = "2 hours"

  # The clusters inherit the account default: create them after it is in place, since a cluster
  # takes the default in force when it is created.
  depends_on = [coiled_backend_options.this]
}
