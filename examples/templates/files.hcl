# Rendering files from templates. Run from the repository root (template paths are relative to the
# working directory, as in mittnite):
#
#   DATABASE_URL=postgres://db/app cargo run -- renderfiles -c examples/templates --dry-run
#   DATABASE_URL=postgres://db/app cargo run -- renderfiles -c examples/templates -- cat /tmp/gantry-example/app.yaml

file "/tmp/gantry-example/nginx.conf" {
  from = "templates/nginx.conf.tera"
  params = {
    server_name = "example.local"
    upstreams   = ["127.0.0.1:8081", "127.0.0.1:8082"]
    locations   = {
      "/"    = ""
      "/api" = "/v1"
    }
  }
}

file "/tmp/gantry-example/app.yaml" {
  from = "templates/app.yaml.tera"
  mode = "0640"
  params = {
    name     = "shop"
    pool     = 10
    features = { search = true, checkout = false }
    limits   = { requests_per_second = 50, burst = 100 }
  }
}

# Generated once: later boots keep the first secret.
file "/tmp/gantry-example/secret.env" {
  content   = "SESSION_SECRET={{ randAlphaNum(length=32) }}\n"
  overwrite = false
  mode      = "0600"
}

# mittnite's README example, ported (see docs/templates.md).
file "/tmp/gantry-example/test.txt" {
  from = "templates/test.txt.tera"
  params = {
    foo = "bar"
  }
}
