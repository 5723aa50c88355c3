#!/usr/bin/env bash
# Install (Debian's package) and start a PostgreSQL server on loopback for the JDBC tests,
# with a throwaway role. Prints the env exports the tests read. Needs root (CI runs as root).
set -euo pipefail
PORT="${LAKEBOOST_PG_PORT:-5432}"
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
VERSION="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^${VERSION} main$"; then
  pg_createcluster "${VERSION}" main -p "${PORT}" >&2
fi
# Loopback only: the tests need nothing else.
sed -i "s/^#\?listen_addresses.*/listen_addresses = '127.0.0.1'/" "/etc/postgresql/${VERSION}/main/postgresql.conf"
pg_ctlcluster "${VERSION}" main start >&2 || pg_ctlcluster "${VERSION}" main status >&2
PORT="$(pg_lsclusters -h | awk -v v="${VERSION}" '$1==v && $2=="main" {print $3}')"
# Throwaway credentials for a loopback-only test server; real ones come from the environment.
PASSWORD="lakeboost-test-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
su postgres -c "psql -q -p ${PORT} -v ON_ERROR_STOP=1" >&2 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lakeboost') THEN CREATE ROLE lakeboost LOGIN; END IF;
END \$\$;
ALTER ROLE lakeboost WITH PASSWORD '${PASSWORD}';
SELECT 'CREATE DATABASE lakeboost OWNER lakeboost' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'lakeboost')\gexec
SQL
echo "export LAKEBOOST_TEST_PG_URL=jdbc:postgresql://127.0.0.1:${PORT}/lakeboost"
echo "export LAKEBOOST_TEST_PG_USER=lakeboost"
echo "export LAKEBOOST_TEST_PG_PASSWORD=${PASSWORD}"
