# Backend options are imported by workspace slug.
terraform import coiled_backend_options.team my-team
