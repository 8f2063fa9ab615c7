import {
  to = coiled_backend_options.team
  id = "my-team"
}
