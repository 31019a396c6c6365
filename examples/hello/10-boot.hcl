# Boot jobs run to completion, in parallel, before any job starts.
boot "prepare" {
  command = "/bin/sh"
  args    = ["-c", "echo preparing; mkdir -p /tmp/gantry-hello && date > /tmp/gantry-hello/booted-at"]
  timeout = "10s"
}
