# A long-running job, restarted with backoff if it fails.
job "greeter" {
  command = "/bin/sh"
  args    = ["-c", "echo \"hello from $GREETING (booted $(cat /tmp/gantry-hello/booted-at))\"; for i in 1 2 3; do echo tick $i; sleep 1; done"]
  env     = ["GREETING=gantry"]
  oneTime = true
  enableTimestamps = true
}

# A one-time job that finishes; gantry exits once every job has ended.
job "once" {
  command = "/bin/echo"
  args    = ["a one-time job ran"]
  oneTime = true
}
