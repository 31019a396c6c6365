# Rendered before anything else: the app's configuration, from the environment compose sets.
file "/tmp/app/app.conf" {
  from = "templates/app.conf.tera"
  params = {
    pool_size = 10
  }
}
