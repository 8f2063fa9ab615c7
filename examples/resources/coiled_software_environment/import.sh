# Software environments are imported by name, optionally prefixed with the workspace.
terraform import coiled_software_environment.etl etl
terraform import coiled_software_environment.etl my-team/etl
