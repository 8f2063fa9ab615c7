import {
  to       = coiled_backend_options.team
  identity = { workspace = "my-team" }
}
