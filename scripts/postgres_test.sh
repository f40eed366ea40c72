#!/usr/bin/env bash
# Tests scripts/postgres.sh without touching the machine's PostgreSQL: the PostgreSQL and
# Debian tools are stubs that log their calls and behave as a fresh machine, a stopped
# server or a running one would, and nothing else from the machine is on the PATH.
# Run by scripts/test.sh; on its own: scripts/postgres_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# The basic tools the script and the stubs need, and nothing of PostgreSQL.
mkdir -p "$work/base"
for tool in bash env awk sort ls head tail cat sleep id grep rm cp touch tr; do
  ln -s "$(command -v "$tool")" "$work/base/$tool"
done

# stub DIR NAME BODY: a command that logs its arguments, then runs BODY.
stub() {
  printf '#!%s\necho "%s $*" >> "%s/calls"\n%s\n' "$work/base/bash" "$2" "$work" "$3" > "$1/$2"
  chmod +x "$1/$2"
}

# machine INSTALLED CLUSTER DEFAULT: the tools exist (yes/no), the cluster (none, down,
# online), the tests' default URL works (yes/no).
machine() {
  local installed=$1 cluster=$2 default=$3
  rm -rf "$work/bin" "$work/later" "$work/calls" "$work/cluster"
  mkdir -p "$work/bin" "$work/later"
  touch "$work/calls"
  echo "$cluster" > "$work/cluster"
  local tools="$work/later"
  if [ "$installed" = yes ]; then tools="$work/bin"; fi
  # apt-get install puts the PostgreSQL tools on the PATH.
  stub "$work/bin" apt-get "if [ \"\$1\" = install ]; then cp $work/later/* $work/bin/ 2>/dev/null || true; fi"
  stub "$work/bin" sudo 'if [ "$1" = -u ]; then shift 2; fi; "$@"'
  stub "$work/bin" runuser 'while [ "$1" != -- ]; do shift; done; shift; "$@"'
  stub "$tools" pg_lsclusters "c=\$(cat $work/cluster); [ \"\$c\" = none ] || echo \"15 main 5432 \$c postgres /var/lib/postgresql/15/main log\""
  stub "$tools" pg_createcluster "echo down > $work/cluster"
  stub "$tools" pg_ctlcluster "echo online > $work/cluster"
  stub "$tools" pg_isready "[ \"\$(cat $work/cluster)\" = online ]"
  stub "$tools" createdb 'true'
  stub "$tools" psql "for a in \"\$@\"; do case \$a in
      postgres://psp_test:*) exit 0 ;;
      postgres://*) [ $default = yes ]; exit \$? ;;
    esac; done
    cat > /dev/null"
}

# Runs ensure_postgres on the stubbed machine; prints the URL the tests would use.
run() {
  env -u PSP_TEST_POSTGRES_URL PATH="$work/bin:$work/base" "$work/base/bash" -c '
    set -euo pipefail
    . scripts/postgres.sh
    ensure_postgres
    echo "${PSP_TEST_POSTGRES_URL:-default}"' </dev/null 2>/dev/null
}

check() {
  if [ "$2" = "$3" ]; then
    echo "ok: $1"
  else
    echo "FAILED: $1: got [$2], want [$3]" >&2
    failures=$((failures + 1))
  fi
}

called() { grep -c "^$1" "$work/calls" || true; }

machine yes online yes
check "a running server that serves the tests is left alone" "$(run)" default
check "  nothing installed, started or created" \
  "$(grep -c 'apt-get\|pg_ctlcluster\|pg_createcluster\|createdb\|runuser' "$work/calls" || true)" 0

machine yes down yes
check "a stopped server is started" "$(run)" default
check "  once, without systemd" "$(called 'pg_ctlcluster --skip-systemctl-redirect 15 main start')" 1
check "  nothing installed" "$(called apt-get)" 0

machine yes online no
check "a server without the tests' role gets one, and the URL names it" "$(run)" \
  "postgres://psp_test:psp_test@127.0.0.1:5432/test"
check "  the missing database is created" "$(called createdb)" 1
check "  run again, the same" "$(run)" "postgres://psp_test:psp_test@127.0.0.1:5432/test"

machine no none no
check "a fresh machine gets postgresql, a cluster, a start and a role" "$(run)" \
  "postgres://psp_test:psp_test@127.0.0.1:5432/test"
check "  installed with apt-get" "$(called 'apt-get install -y postgresql')" 1
check "  a cluster created" "$(called pg_createcluster)" 1
check "  and started" "$(called pg_ctlcluster)" 1

machine yes online yes
check "the caller's own server is used as given" \
  "$(PSP_TEST_POSTGRES_URL=postgres://u@db:1/t PATH="$work/bin:$work/base" "$work/base/bash" -c \
    '. scripts/postgres.sh; ensure_postgres; echo "$PSP_TEST_POSTGRES_URL"' </dev/null)" \
  "postgres://u@db:1/t"
check "  without a single call" "$(grep -c . "$work/calls" || true)" 0

if [ "$failures" -ne 0 ]; then
  echo "scripts/postgres_test.sh: $failures failure(s)" >&2
  exit 1
fi
