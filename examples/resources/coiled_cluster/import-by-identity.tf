import {
  to       = coiled_cluster.etl
  identity = { workspace = "my-team", id = "1234" }
}
