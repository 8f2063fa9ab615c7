output "scheduler_addresses" {
  description = "Where Dask clients connect, by cluster name."
  value       = { for name, c in coiled_cluster.this : name => c.scheduler_address }
}

output "cluster_ids" {
  description = "Coiled's cluster ids, by cluster name."
  value       = { for name, c in coiled_cluster.this : name => c.id }
}

output "firewall_rules" {
  description = "The rules each cluster takes from the account default, by cluster name."
  value       = { for name, c in coiled_cluster.this : name => c.firewall_rules }
}

output "environments" {
  description = "The environments' build status, by name."
  value       = { for name, e in coiled_software_environment.this : name => e.status }
}
