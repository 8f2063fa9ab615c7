terraform {
  required_version = ">= 1.0"
  required_providers {
    coiled = {
      source  = "coiled/coiled"
      version = ">= 0.1"
    }
  }
}
