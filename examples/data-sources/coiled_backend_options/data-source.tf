data "coiled_backend_options" "current" {
  workspace = "my-team"
}

output "default_ingress" {
  value = data.coiled_backend_options.current.ingress
}

output "uses_coiled_default_ingress" {
  value = data.coiled_backend_options.current.uses_coiled_default_ingress
}
