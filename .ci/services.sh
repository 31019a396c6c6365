#!/usr/bin/env bash
# Makes sure the real servers gantry's probe tests talk to are installed and answering.
#
# Idempotent: a service that already answers is left alone. One that does not is started with the
# command from SERVICES.md; if it still does not answer, this script fails naming it. SMTP (aiosmtpd)
# and MongoDB (nx-27017, a wire-compatible server) are not pre-installed: they go into a Python
# virtual environment outside the repo, which the tests start on free ports themselves.
#
#   GANTRY_TEST_VENV   where that venv lives (default /opt/gantry-test-venv)
set -euo pipefail

VENV="${GANTRY_TEST_VENV:-/opt/gantry-test-venv}"
failed=()

say() { printf '[services] %s\n' "$*" >&2; }

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ensure NAME PORT CHECK_CMD START_CMD [WAIT_SECONDS]
ensure() {
  local name=$1 port=$2 check=$3 start=$4 wait=${5:-20}
  if port_open "$port" && bash -c "$check" >/dev/null 2>&1; then
    say "$name: answering on 127.0.0.1:$port"
    return 0
  fi
  say "$name: not answering, starting it: $start"
  bash -c "$start" >/dev/null 2>&1 || true
  for _ in $(seq 1 $((wait * 4))); do
    if port_open "$port" && bash -c "$check" >/dev/null 2>&1; then
      say "$name: started"
      return 0
    fi
    sleep 0.25
  done
  say "ERROR: $name does not answer on 127.0.0.1:$port (tried: $start)"
  failed+=("$name")
}

ensure MariaDB 3306 \
  "mariadb -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1'" \
  "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"

ensure PostgreSQL 5432 \
  "pg_isready -h 127.0.0.1 -p 5432" \
  'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'

ensure Redis 6379 \
  "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG" \
  'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'

# RabbitMQ opens its port a few seconds after it is started, and answers AMQP a little later still.
ensure RabbitMQ 5672 \
  "rabbitmqctl -q status" \
  "rabbitmq-server -detached" 60

# PostgreSQL here trusts every local connection, so a wrong password cannot be shown. One extra role,
# gantry_pw, is made to need its password (scram) so the probe tests can show the server refusing it.
if [[ ! " ${failed[*]} " =~ " PostgreSQL " ]]; then
  hba=$(psql -h 127.0.0.1 -U postgres -Atc 'SHOW hba_file' 2>/dev/null || true)
  if [[ -n "$hba" && -f "$hba" ]] && ! grep -q '^host all gantry_pw ' "$hba"; then
    say "PostgreSQL: requiring a password for role gantry_pw in $hba"
    sed -i '1i host all gantry_pw 127.0.0.1/32 scram-sha-256\nhost all gantry_pw ::1/128 scram-sha-256' "$hba"
    psql -h 127.0.0.1 -U postgres -qc 'SELECT pg_reload_conf()' >/dev/null
  fi
  psql -h 127.0.0.1 -U postgres -qc "DO \$\$BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gantry_pw') THEN
        CREATE ROLE gantry_pw LOGIN;
      END IF;
    END\$\$; SET password_encryption = 'scram-sha-256'; ALTER ROLE gantry_pw PASSWORD 'gantry-pg-pw';" \
    >/dev/null || { say "ERROR: PostgreSQL: cannot create role gantry_pw"; failed+=(PostgreSQL-setup); }
fi

# SMTP and MongoDB servers for the tests, in a venv outside the repo.
if [[ ! -x "$VENV/bin/aiosmtpd" || ! -x "$VENV/bin/nx-27017" ]]; then
  say "installing aiosmtpd and nx-27017 into $VENV"
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    say "python3 lacks venv support; installing python3-venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check aiosmtpd nx-27017 ||
    { say "ERROR: pip install aiosmtpd nx-27017 failed"; failed+=(python-venv); }
fi
for tool in aiosmtpd nx-27017; do
  [[ -x "$VENV/bin/$tool" ]] || { say "ERROR: $VENV/bin/$tool missing"; failed+=("$tool"); }
done

if ((${#failed[@]})); then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "all services ready"
