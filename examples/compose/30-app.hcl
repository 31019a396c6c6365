# The application itself (a stand-in that shows its rendered configuration and stays up).
job "app" {
  command = "/bin/sh"
  args    = ["-c", "cat /tmp/app/app.conf; exec sleep infinity"]
}
