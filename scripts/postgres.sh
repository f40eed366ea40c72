#!/usr/bin/env bash
# A PostgreSQL server for the store's tests and the replicas end-to-end test, on a fresh
# Debian machine as on one that has it already. Sourced by scripts/test.sh, which calls
# `ensure_postgres`; run on its own, it does the same and prints the URL the tests use.
#
# The tests connect to PSP_TEST_POSTGRES_URL, by default postgres://127.0.0.1:5432/test as
# the current user without a password. `ensure_postgres`:
#   1. leaves everything alone when PSP_TEST_POSTGRES_URL is set (the caller's server);
#   2. installs Debian's `postgresql` when its tools are missing (as root, or with sudo);
#   3. creates a cluster if there is none, and starts it if it is down;
#   4. waits until it accepts connections;
#   5. when the default URL already works (a server set up for the tests, as on the
#      machines this project is developed on), changes nothing more;
#   6. otherwise creates a login role `psp_test` and the `test` database it may create
#      schemas in, and exports PSP_TEST_POSTGRES_URL with that role's password. Debian's
#      default authentication (a password over TCP) is kept: the server's access rules are
#      never loosened.
# Every step checks before it acts, so running it again changes nothing.

# The role and password are for a local test database only, on 127.0.0.1.
PSP_TEST_ROLE=psp_test
PSP_TEST_PASSWORD=psp_test

pg_as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# As the server's superuser over its local socket; the caller's PG* settings (a user, a
# host, a password meant for the tests) do not apply to these calls.
pg_as_postgres() {
  local clean=(env -u PGUSER -u PGPASSWORD -u PGHOST -u PGHOSTADDR -u PGDATABASE -u PGSERVICE)
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "${clean[@]}" "$@"
  else
    sudo -u postgres "${clean[@]}" "$@"
  fi
}

# Whether `url` reaches its database (never prompting for a password, within 5 s).
pg_url_works() { PGCONNECT_TIMEOUT=5 psql -w "$1" -Atqc 'SELECT 1' >/dev/null 2>&1; }

ensure_postgres() {
  if [ -n "${PSP_TEST_POSTGRES_URL:-}" ]; then
    return 0
  fi
  if ! command -v pg_lsclusters >/dev/null || ! command -v pg_ctlcluster >/dev/null \
    || ! command -v psql >/dev/null; then
    echo "postgres.sh: installing PostgreSQL (Debian's postgresql)" >&2
    pg_as_root apt-get update >&2
    pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
  fi

  # Debian's package creates the cluster `main` unless configured not to.
  if [ -z "$(pg_lsclusters --no-header 2>/dev/null)" ]; then
    local newest
    newest=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$newest" ]; then
      echo "postgres.sh: no PostgreSQL server in /usr/lib/postgresql" >&2
      return 1
    fi
    echo "postgres.sh: creating cluster $newest/main" >&2
    pg_as_root pg_createcluster "$newest" main >&2
  fi

  # The cluster on the tests' port 5432 if there is one, else the first.
  local version="" cluster="" port="" status=""
  read -r version cluster port status _ < <(
    pg_lsclusters --no-header | awk '$3 == 5432' | head -n 1
  ) || true
  if [ -z "$version" ]; then
    read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n 1) || true
  fi
  if [ -z "$version" ] || [ -z "$port" ]; then
    echo "postgres.sh: no PostgreSQL cluster found (pg_lsclusters)" >&2
    return 1
  fi
  if [ "$status" != "online" ]; then
    echo "postgres.sh: starting cluster $version/$cluster on port $port" >&2
    # Without systemd (containers) the cluster is started directly.
    pg_as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2
  fi
  local waited=0
  until pg_isready -q -h 127.0.0.1 -p "$port"; do
    if [ "$waited" -ge 60 ]; then
      echo "postgres.sh: PostgreSQL on 127.0.0.1:$port did not become ready in 30 s" >&2
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done

  if pg_url_works "postgres://127.0.0.1:$port/test"; then
    if [ "$port" != 5432 ]; then
      export PSP_TEST_POSTGRES_URL="postgres://127.0.0.1:$port/test"
    fi
    return 0
  fi

  echo "postgres.sh: creating role $PSP_TEST_ROLE and database test" >&2
  pg_as_postgres psql -p "$port" -v ON_ERROR_STOP=1 -q >&2 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PSP_TEST_ROLE') THEN
    CREATE ROLE $PSP_TEST_ROLE LOGIN PASSWORD '$PSP_TEST_PASSWORD';
  ELSE
    ALTER ROLE $PSP_TEST_ROLE LOGIN PASSWORD '$PSP_TEST_PASSWORD';
  END IF;
END
\$\$;
SQL
  if [ "$(pg_as_postgres psql -p "$port" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
    pg_as_postgres createdb -p "$port" -O "$PSP_TEST_ROLE" test >&2
  fi
  # Each test creates (and drops) a schema of its own in `test`.
  pg_as_postgres psql -p "$port" -v ON_ERROR_STOP=1 -qc \
    "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE test TO $PSP_TEST_ROLE" >&2

  local url="postgres://$PSP_TEST_ROLE:$PSP_TEST_PASSWORD@127.0.0.1:$port/test"
  if ! pg_url_works "$url"; then
    echo "postgres.sh: $PSP_TEST_ROLE cannot log in over 127.0.0.1:$port; check the" \
      "server's pg_hba.conf (a host line for 127.0.0.1/32 with scram-sha-256 or md5)," \
      "or set PSP_TEST_POSTGRES_URL to a database the tests may use" >&2
    return 1
  fi
  export PSP_TEST_POSTGRES_URL="$url"
}

# Run on its own: ensure the server, then print the URL the tests use.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  ensure_postgres
  echo "${PSP_TEST_POSTGRES_URL:-postgres://127.0.0.1:5432/test}"
fi
