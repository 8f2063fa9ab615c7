import {
  to = coiled_software_environment.etl
  id = "my-team/etl"
}
