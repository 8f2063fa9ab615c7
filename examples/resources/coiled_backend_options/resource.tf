variable "aws_access_key_id" {
  type      = string
  sensitive = true
}

variable "aws_secret_access_key" {
  type      = string
  sensitive = true
}

# Account-wide defaults: every cluster created afterwards in the workspace accepts the scheduler (443
# on current Coiled, 8786 on older releases) and the dashboard (8787) from the office VPN only, unless
# it sets its own ingress.
resource "coiled_backend_options" "team" {
  workspace             = "my-team"
  backend               = "aws"
  region                = "us-east-1"
  aws_access_key_id     = var.aws_access_key_id
  aws_secret_access_key = var.aws_secret_access_key

  ingress {
    ports = [443, 8786, 8787]
    cidr  = "10.1.0.0/16"
  }
}
