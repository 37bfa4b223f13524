#!/usr/bin/env bash
# Starts PostgreSQL and Redis on loopback for the scale-out persistence tests.
#
#   eval "$(.ci/services.sh)"
#
# Prints `export ...` lines for POCKETMESH_POSTGRES_DSN and POCKETMESH_REDIS_URL on stdout
# (progress goes to stderr). Idempotent: a service that already answers is left alone.
# Never fails the caller: a service that cannot be installed or started is reported and
# its variable is not printed, so its tests skip with a message instead.
set -uo pipefail

PG_PORT="${POCKETMESH_PG_PORT:-5432}"
PG_USER="${POCKETMESH_PG_USER:-pocketmesh}"
PG_PASSWORD="${POCKETMESH_PG_PASSWORD:-pocketmesh}"
PG_DB="${POCKETMESH_PG_DB:-pocketmesh}"
REDIS_PORT="${POCKETMESH_REDIS_PORT:-6379}"
PG_DSN="postgresql://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/${PG_DB}"
REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"

log() { echo "services.sh: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

APT_UPDATED=0
apt_install() {
    # apt_install PACKAGE...: installs missing Debian packages, quietly; returns 1 if impossible.
    if [ "$(id -u)" != 0 ] || ! have apt-get; then
        log "cannot install $* (needs root and apt-get)"
        return 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || {
            log "apt-get update failed"; return 1; }
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null 2>&1 || { log "apt-get install $* failed"; return 1; }
}

pg_sql() { # runs SQL as the postgres superuser over the local socket
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- psql -p "$PG_PORT" -qtAX -v ON_ERROR_STOP=1 -c "$1"
    else
        psql -p "$PG_PORT" -qtAX -v ON_ERROR_STOP=1 -c "$1"
    fi
}

pg_user_ok() {
    PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 psql "$PG_DSN" -qtAX -c "SELECT 1" >/dev/null 2>&1
}

start_postgres() {
    if have psql && pg_user_ok; then
        log "PostgreSQL already running on 127.0.0.1:${PG_PORT}"
        return 0
    fi
    if ! have pg_ctlcluster; then
        apt_install postgresql || return 1
    fi
    if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then
        [ "$(id -u)" = 0 ] || { log "PostgreSQL is not running and starting it needs root"; return 1; }
        local version cluster
        read -r version cluster _ < <(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p' | head -1)
        if [ -z "${version:-}" ]; then
            version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
            [ -n "$version" ] || { log "no PostgreSQL server binaries found"; return 1; }
            cluster=main
            pg_createcluster -p "$PG_PORT" "$version" "$cluster" >/dev/null 2>&1 || {
                log "pg_createcluster $version $cluster failed"; return 1; }
        fi
        pg_ctlcluster "$version" "$cluster" start -- -o "-c listen_addresses=127.0.0.1" \
            >/dev/null 2>&1 || pg_ctlcluster "$version" "$cluster" start >/dev/null 2>&1 || {
            log "could not start PostgreSQL cluster $version/$cluster (see /var/log/postgresql)"; return 1; }
        for _ in $(seq 1 50); do
            pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
            sleep 0.2
        done
    fi
    [ "$(id -u)" = 0 ] || { pg_user_ok && return 0; log "cannot create the $PG_USER role without root"; return 1; }
    pg_sql "DO \$\$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PG_USER}') THEN
                CREATE ROLE ${PG_USER} LOGIN PASSWORD '${PG_PASSWORD}';
              END IF;
            END \$\$;" >/dev/null || { log "could not create role ${PG_USER}"; return 1; }
    if [ -z "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = '${PG_DB}'")" ]; then
        pg_sql "CREATE DATABASE ${PG_DB} OWNER ${PG_USER}" >/dev/null || {
            log "could not create database ${PG_DB}"; return 1; }
    fi
    pg_user_ok || { log "PostgreSQL is up but ${PG_DSN} does not accept connections"; return 1; }
    log "PostgreSQL ready at 127.0.0.1:${PG_PORT}"
}

redis_ok() { have redis-cli && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

start_redis() {
    if redis_ok; then
        log "Redis already running on 127.0.0.1:${REDIS_PORT}"
        return 0
    fi
    have redis-server || apt_install redis-server || return 1
    redis-server --bind 127.0.0.1 ::1 --port "$REDIS_PORT" --daemonize yes --save "" \
        --appendonly no --logfile /tmp/pocketmesh-redis.log >/dev/null 2>&1 \
        || redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save "" \
            --appendonly no --logfile /tmp/pocketmesh-redis.log >/dev/null 2>&1 \
        || { log "could not start redis-server (see /tmp/pocketmesh-redis.log)"; return 1; }
    for _ in $(seq 1 50); do
        redis_ok && break
        sleep 0.1
    done
    redis_ok || { log "redis-server started but does not answer PING"; return 1; }
    log "Redis ready at 127.0.0.1:${REDIS_PORT}"
}

if start_postgres; then
    echo "export POCKETMESH_POSTGRES_DSN='${PG_DSN}'"
else
    log "PostgreSQL unavailable: its tests will skip"
fi
if start_redis; then
    echo "export POCKETMESH_REDIS_URL='${REDIS_URL}'"
else
    log "Redis unavailable: its tests will skip"
fi
exit 0
