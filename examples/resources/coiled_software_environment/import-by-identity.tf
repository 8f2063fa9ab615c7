import {
  to       = coiled_software_environment.etl
  identity = { workspace = "my-team", name = "etl" }
}
