#!/usr/bin/env bash
# journey-ml backing services on this machine, without Docker (used by make up/down/status).
#
#   infra/stack.sh up       create the databases if missing, start MLflow + Prefect servers,
#                           migrate the warehouse, start the scoring API and the flow worker
#                           (python -m flows.serve), wait until they answer, print the env
#                           lines to export (the compose services, without Docker)
#   infra/stack.sh down     stop what `up` started (whole process groups, nothing left behind)
#   infra/stack.sh status   one line per service: up/down and its URL (exit 3 if any is down)
#
# PostgreSQL itself is not managed here: it must already run (PGHOST/PGPORT) and PGUSER must
# be allowed to create databases. Passwords are never put in URLs: set PGPASSWORD (or use
# ~/.pgpass) and libpq, psycopg and asyncpg all pick it up.
#
# `up` is idempotent and prints nothing but the export lines on stdout (progress goes to
# stderr), so this works as often as you like:   eval "$(infra/stack.sh up)"
#
# Environment (defaults):
#   VENV            virtualenv with mlflow + prefect; when unset, <repo>/.venv
#   PGHOST/PGPORT/PGUSER   127.0.0.1 / 5432 / postgres
#   MLFLOW_PORT     5000      PREFECT_PORT   4200      STACK_HOST   127.0.0.1 (bind address)
#   API_PORT        8000      API_WORKERS    1
#   JOURNEY_API_TOKEN  the API's bearer token; when unset one is generated once and kept in
#                   $STACK_DIR/api-token (mode 600)
#   MLFLOW_WORKERS  1         STACK_TIMEOUT  180 s for the services to answer their health endpoints
#   MLFLOW_SERVER_ENABLE_JOB_EXECUTION  false  (MLflow's GenAI job runner: 7 more processes)
#   STACK_DIR       <repo>/.journey/stack  (pid files, logs, Prefect home)
#   MLFLOW_ARTIFACTS_DIR   <repo>/.journey/mlartifacts
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$ROOT/.journey/stack}"
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
STACK_HOST="${STACK_HOST:-127.0.0.1}"
MLFLOW_PORT="${MLFLOW_PORT:-5000}"
PREFECT_PORT="${PREFECT_PORT:-4200}"
MLFLOW_WORKERS="${MLFLOW_WORKERS:-1}"
STACK_TIMEOUT="${STACK_TIMEOUT:-180}"
MLFLOW_ARTIFACTS_DIR="${MLFLOW_ARTIFACTS_DIR:-$ROOT/.journey/mlartifacts}"
STOP_TIMEOUT=20
API_PORT="${API_PORT:-8000}"
API_WORKERS="${API_WORKERS:-1}"
SERVICES=(mlflow prefect api worker)

# Clients reach the servers through loopback when they listen on every interface.
CLIENT_HOST="$STACK_HOST"
[[ "$CLIENT_HOST" == "0.0.0.0" ]] && CLIENT_HOST=127.0.0.1
MLFLOW_URL="http://$CLIENT_HOST:$MLFLOW_PORT"
PREFECT_URL="http://$CLIENT_HOST:$PREFECT_PORT"
API_URL="http://$CLIENT_HOST:$API_PORT"

# No telemetry from anything started here.
export DO_NOT_TRACK=1 MLFLOW_DISABLE_TELEMETRY=true PREFECT_SERVER_ANALYTICS_ENABLED=false

log() { printf '%s\n' "$*" >&2; }
die() { printf 'stack.sh: error: %s\n' "$*" >&2; exit 1; }

service_port() { case $1 in mlflow) echo "$MLFLOW_PORT" ;; prefect) echo "$PREFECT_PORT" ;; api) echo "$API_PORT" ;; worker) echo "" ;; esac; }
service_url() {
    case $1 in mlflow) echo "$MLFLOW_URL" ;; prefect) echo "$PREFECT_URL" ;; api) echo "$API_URL" ;;
        worker) echo "python -m flows.serve (deployments on $PREFECT_URL)" ;; esac
}
health_url() {
    case $1 in mlflow) echo "$MLFLOW_URL/health" ;; prefect) echo "$PREFECT_URL/api/health" ;;
        api) echo "$API_URL/healthz" ;;
        # the worker has no HTTP endpoint: it is up once its deployments exist on the server
        worker) echo "$PREFECT_URL/api/deployments/name/journey-score/journey-score" ;; esac
}
# What the service's command line contains: guards against a recycled pid.
service_marker() {
    case $1 in mlflow) echo "mlflow server" ;; prefect) echo "prefect server start" ;;
        api) echo "journey-ml serve" ;; worker) echo "flows.serve" ;; esac
}
pid_file() { echo "$STACK_DIR/$1.pid"; }
log_file() { echo "$STACK_DIR/$1.log"; }

healthy() {
    # deployments outlive the worker on the server: the worker is healthy only while it runs
    if [[ $1 == worker ]] && ! running_pid worker >/dev/null; then return 1; fi
    curl -fsS -m 3 -o /dev/null "$(health_url "$1")" 2>/dev/null
}
port_open() { (exec 3<>"/dev/tcp/$CLIENT_HOST/$1") 2>/dev/null; }
group_alive() { kill -0 -- "-$1" 2>/dev/null; }

# Prints the pid recorded for service $1 if that process is still the service; cleans up a
# stale pid file otherwise.
running_pid() {
    local file pid args
    file="$(pid_file "$1")"
    [[ -f "$file" ]] || return 1
    pid="$(<"$file")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && args="$(ps -o args= -p "$pid" 2>/dev/null)" \
        && [[ "$args" == *"$(service_marker "$1")"* ]]; then
        echo "$pid"
        return 0
    fi
    rm -f "$file"
    return 1
}

resolve_venv() {
    local venv="${VENV:-$ROOT/.venv}"
    [[ -d "$venv" ]] || die "no virtualenv at $venv: run 'make install' or set VENV=/path/to/venv"
    venv="$(cd "$venv" && pwd)"
    for tool in mlflow prefect journey-ml python; do
        [[ -x "$venv/bin/$tool" ]] || die "$venv/bin/$tool not found: install the project into $venv"
    done
    VENV_DIR="$venv"
}

ensure_databases() {
    command -v psql >/dev/null || die "psql not found (install postgresql-client)"
    pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null \
        || die "PostgreSQL does not answer on $PGHOST:$PGPORT (set PGHOST/PGPORT)"
    PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 \
        -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres \
        -f "$ROOT/infra/postgres-init.sql" >/dev/null \
        || die "could not create the databases journey/mlflow/prefect as $PGUSER@$PGHOST:$PGPORT"
}

# start_service NAME CMD... : launch CMD in its own session (so `down` can stop the whole
# process group: MLflow forks uvicorn workers and job consumers) unless already running.
start_service() {
    local name=$1 pid log port
    shift
    log="$(log_file "$name")"
    port="$(service_port "$name")"
    if pid="$(running_pid "$name")"; then
        log "$name: already running (pid $pid)"
        return 0
    fi
    if [[ -n "$port" ]] && port_open "$port"; then
        die "port $port is already in use by a process stack.sh did not start; stop it or set $(tr a-z A-Z <<<"$name")_PORT"
    fi
    [[ -f "$log" ]] && mv -f "$log" "$log.1"
    printf '=== %s: %s\n' "$(date '+%F %T')" "$*" >"$log"
    # fd 9 is the stack lock: the service must not inherit it.
    (cd "$STACK_DIR" && exec setsid "$@" </dev/null >>"$log" 2>&1 9>&-) &
    pid=$!
    echo "$pid" >"$(pid_file "$name")"
    STARTED+=("$name")
    LAUNCHED_AT[$name]=$SECONDS
    log "$name: started (pid $pid, log $log)"
}

# stop_group NAME PID: SIGTERM the process group, SIGKILL it after STOP_TIMEOUT seconds.
stop_group() {
    local name=$1 pid=$2 waited=0
    kill -TERM -- "-$pid" 2>/dev/null || true
    while group_alive "$pid" && ((waited < STOP_TIMEOUT * 4)); do
        sleep 0.25
        waited=$((waited + 1))
    done
    if group_alive "$pid"; then
        log "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$(pid_file "$name")"
}

# Poll every service until it answers its health endpoint; fail fast if one exits.
wait_healthy() {
    local pending=("$@") still name pid url log t0 start=$SECONDS
    while ((${#pending[@]})); do
        still=()
        for name in "${pending[@]}"; do
            url="$(health_url "$name")"
            log="$(log_file "$name")"
            if healthy "$name"; then
                t0=${LAUNCHED_AT[$name]:-}
                if [[ -n "$t0" ]]; then
                    log "$name: up at $(service_url "$name"), answered $((SECONDS - t0))s after launch"
                else
                    log "$name: up at $(service_url "$name")"
                fi
                continue
            fi
            pid="$(<"$(pid_file "$name")")"
            if ! kill -0 "$pid" 2>/dev/null; then
                tail -n 20 "$log" >&2 || true
                die "$name exited during startup; full log: $log"
            fi
            if ((SECONDS - start >= STACK_TIMEOUT)); then
                tail -n 20 "$log" >&2 || true
                die "$name did not answer $url within ${STACK_TIMEOUT}s (raise STACK_TIMEOUT?); full log: $log"
            fi
            still+=("$name")
        done
        pending=("${still[@]}")
        ((${#pending[@]})) && sleep 1
    done
    return 0
}

lock_stack() {
    mkdir -p "$STACK_DIR"
    exec 9>"$STACK_DIR/.lock"
    flock -w 600 9 || die "another infra/stack.sh is still running (lock $STACK_DIR/.lock)"
}

# On a failed `up`, stop what this run started: `up` either succeeds or changes nothing.
rollback() {
    local pid
    for name in "${STARTED[@]}"; do
        if pid="$(running_pid "$name")"; then
            log "$name: stopping it again (up failed)"
            stop_group "$name" "$pid"
        fi
    done
}

cmd_up() {
    STARTED=()
    declare -gA LAUNCHED_AT=()
    trap rollback EXIT
    lock_stack
    command -v curl >/dev/null || die "curl not found"
    resolve_venv
    ensure_databases
    mkdir -p "$MLFLOW_ARTIFACTS_DIR" "$STACK_DIR/prefect-home"
    local pg="$PGUSER@$PGHOST:$PGPORT"

    start_service mlflow env \
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}" \
        "$VENV_DIR/bin/mlflow" server \
        --backend-store-uri "postgresql+psycopg://$pg/mlflow" \
        --serve-artifacts --artifacts-destination "$MLFLOW_ARTIFACTS_DIR" \
        --host "$STACK_HOST" --port "$MLFLOW_PORT" --workers "$MLFLOW_WORKERS"

    # Own PREFECT_HOME (profiles, UI build) so the user's profile cannot redirect the server.
    start_service prefect env -u PREFECT_API_URL -u PREFECT_API_KEY -u PREFECT_PROFILE \
        PREFECT_HOME="$STACK_DIR/prefect-home" \
        PREFECT_UI_STATIC_DIRECTORY="$STACK_DIR/prefect-home/ui" \
        PREFECT_UI_API_URL="$PREFECT_URL/api" \
        PREFECT_API_DATABASE_CONNECTION_URL="postgresql+asyncpg://$pg/prefect" \
        "$VENV_DIR/bin/prefect" server start --host "$STACK_HOST" --port "$PREFECT_PORT"

    # Both start in parallel.
    wait_healthy mlflow prefect
    # /health does not touch the database: check the tracking API once, too.
    curl -fsS -m 10 -o /dev/null \
        "$MLFLOW_URL/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default" \
        || die "MLflow answers /health but its tracking API fails; see $(log_file mlflow)"

    # The compose file's one-shot `migrate`, then `api` and `worker` on the same stores.
    local app_env=(env JOURNEY_DATABASE_URL="postgresql+psycopg://$pg/journey"
                   JOURNEY_MLFLOW_TRACKING_URI="$MLFLOW_URL" JOURNEY_HOME="$STACK_DIR/journey-home"
                   PREFECT_API_URL="$PREFECT_URL/api")
    mkdir -p "$STACK_DIR/journey-home"
    "${app_env[@]}" "$VENV_DIR/bin/journey-ml" db upgrade >&2 \
        || die "could not migrate the warehouse postgresql://$pg/journey"
    local token="${JOURNEY_API_TOKEN:-}" token_file="$STACK_DIR/api-token"
    if [[ -z "$token" ]]; then
        if [[ ! -s "$token_file" ]]; then
            (umask 077 && "$VENV_DIR/bin/python" -c "import secrets; print(secrets.token_urlsafe(32))" >"$token_file")
            log "api: generated a bearer token in $token_file"
        fi
        token="$(<"$token_file")"
    fi
    start_service api "${app_env[@]}" JOURNEY_API_TOKEN="$token" \
        "$VENV_DIR/bin/journey-ml" serve --host "$STACK_HOST" --port "$API_PORT" --workers "$API_WORKERS"
    start_service worker "${app_env[@]}" "$VENV_DIR/bin/python" -m flows.serve
    wait_healthy api worker
    trap - EXIT

    log "stack is up; export these (or: eval \"\$(infra/stack.sh up)\"):"
    echo "export JOURNEY_DATABASE_URL=postgresql+psycopg://$pg/journey"
    echo "export JOURNEY_MLFLOW_TRACKING_URI=$MLFLOW_URL"
    echo "export PREFECT_API_URL=$PREFECT_URL/api"
    echo "export JOURNEY_API_URL=$API_URL"
}

cmd_down() {
    lock_stack
    local pid name i
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        name="${SERVICES[i]}"
        if pid="$(running_pid "$name")"; then
            log "$name: stopping (pid $pid)"
            stop_group "$name" "$pid"
            log "$name: stopped"
        else
            log "$name: not running"
        fi
    done
}

cmd_status() {
    local pid state note rc=0
    if pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; then state=up; else state=down rc=3; fi
    printf '%-9s %-5s %s\n' postgres "$state" "postgresql://$PGUSER@$PGHOST:$PGPORT (not managed by stack.sh)"
    for name in "${SERVICES[@]}"; do
        note=""
        if healthy "$name"; then
            state=up
            running_pid "$name" >/dev/null || note=" (not started by stack.sh)"
        else
            state=down rc=3
            if pid="$(running_pid "$name")"; then
                note=" (pid $pid runs but does not answer; see $(log_file "$name"))"
            fi
        fi
        printf '%-9s %-5s %s\n' "$name" "$state" "$(service_url "$name")$note"
    done
    return "$rc"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
