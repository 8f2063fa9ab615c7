data "coiled_backend_options" "current" {
  workspace = "my-team"
}

output "default_firewall" {
  value = data.coiled_backend_options.current.firewall_rules
}
