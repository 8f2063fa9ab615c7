data "coiled_cluster" "etl" {
  name                    = "etl"
  use_scheduler_public_ip = false
}

output "etl_scheduler" {
  value = data.coiled_cluster.etl.scheduler_address
}
