# An environment of conda and pip packages, as
# coiled.create_software_environment(name="etl", conda={...}, pip=[...]) makes it.
resource "coiled_software_environment" "etl" {
  name = "etl"
  conda {
    channels     = ["conda-forge"]
    dependencies = ["python=3.12", "dask>=2025.1", "pandas"]
  }
  pip = ["xgboost>=2"]
}

# An environment that runs a container image.
resource "coiled_software_environment" "image" {
  name      = "dask-image"
  container = "ghcr.io/dask/dask:latest"
}

# A pip-only environment states its Python (the client would take the local one).
resource "coiled_software_environment" "pip_only" {
  name           = "pip-only"
  python_version = "3.12"
  pip            = ["dask[complete]", "s3fs"]
}

# Clusters name an environment by its name; the cluster is created after the build.
resource "coiled_cluster" "etl" {
  name     = "etl"
  software = coiled_software_environment.etl.name
}
