variable "aws_secret_access_key_wo" {
  type      = string
  sensitive = true
  ephemeral = true
}

# With Terraform 1.11 or later, the secret key can be write-only: sent to Coiled, never stored in
# state or plan. Bump the version to send a new key. This is an alternative to the example beside it,
# not an addition: a workspace has one set of backend options, managed by one resource.
resource "coiled_backend_options" "team_wo" {
  workspace                        = "my-team"
  backend                          = "aws"
  aws_access_key_id                = "AKIAIOSFODNN7EXAMPLE"
  aws_secret_access_key_wo         = var.aws_secret_access_key_wo
  aws_secret_access_key_wo_version = 1

  ingress {
    ports = [443, 8786, 8787]
    cidr  = "10.1.0.0/16"
  }
  ingress {
    ports = [443, 8786]
    cidr  = "192.168.0.0/20" # a paired VPC
  }
}
