variable "workspace" {
  description = "The Coiled workspace; the provider's when null."
  type        = string
  default     = null
}

variable "vpn_cidr" {
  description = "The network Dask clients connect from: it reaches the schedulers (443 on current Coiled, 8786 on older releases)."
  type        = string
  default     = "10.1.0.0/16"
}

variable "office_cidr" {
  description = "The network people open dashboards from (8787, and 443 for HTTPS dashboards, the scheduler's port too on current Coiled)."
  type        = string
  default     = "10.32.0.0/16"
}

variable "manage_backend_options" {
  description = "Whether this module owns the workspace's backend options (one configuration should)."
  type        = bool
  default     = true
}

variable "region" {
  description = "The AWS region of the workspace's clusters."
  type        = string
  default     = "us-east-1"
}

variable "aws_access_key_id" {
  description = "AWS access key Coiled uses to create clusters (when this module owns the backend options)."
  type        = string
  sensitive   = true
  default     = null
}

variable "aws_secret_access_key" {
  description = "AWS secret key Coiled uses to create clusters (when this module owns the backend options)."
  type        = string
  sensitive   = true
  default     = null
}

variable "environments" {
  description = "Software environments by name: conda packages (from conda-forge) and pip packages (may be empty)."
  type = map(object({
    conda = list(string)
    pip   = list(string)
  }))
  default = {
    etl = { conda = ["python=3.12", "dask>=2025.1", "pandas"], pip = [] }
  }
}

variable "clusters" {
  description = "Clusters by name: workers, the environment (a key of `environments`) and whether clients connect over the private network."
  type = map(object({
    n_workers   = number
    environment = string
    private     = bool
  }))
  default = {
    etl = { n_workers = 2, environment = "etl", private = true }
  }
}
