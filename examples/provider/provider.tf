terraform {
  required_providers {
    coiled = {
      source = "coiled/coiled"
    }
  }
}

# The token is best left out of the configuration: the provider reads COILED_TOKEN, then
# DASK_COILED__TOKEN, then ~/.config/dask/coiled.yaml (written by `coiled login`).
provider "coiled" {
  workspace = "my-team"
}
