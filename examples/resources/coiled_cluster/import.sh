# Clusters are imported by id or by name, optionally prefixed with the workspace.
terraform import coiled_cluster.etl 1234
terraform import coiled_cluster.etl etl
terraform import coiled_cluster.etl my-team/etl
