import {
  to = coiled_cluster.etl
  id = "my-team/etl"
}
