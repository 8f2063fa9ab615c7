# Check that a software environment built elsewhere exists (and is built) before clusters use it.
data "coiled_software_environment" "shared" {
  name      = "team-base"
  workspace = "my-team"
}

output "shared_status" {
  value = data.coiled_software_environment.shared.status
}
