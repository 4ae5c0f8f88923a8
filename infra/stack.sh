#!/usr/bin/env bash
# journey-ml backing services on this machine, without Docker (used by make up/down/status).
#
#   infra/stack.sh up       create the databases if missing, start MLflow + Prefect servers,
#                           migrate the warehouse, start the scoring API and the flow worker
#                           (python -m flows.serve), wait until they answer, print the env
#                           lines to export (the compose services, without Docker)
#   infra/stack.sh down     stop what `up` started (whole process groups, nothing left behind)
#   infra/stack.sh status   one line per service: up/down and its URL (exit 3 if any is down)
#   infra/stack.sh credentials   print the logins of the UIs and the API token (the only
#                           command that prints a secret)
#
# PostgreSQL itself is not managed here: it must already run (PGHOST/PGPORT) and PGUSER must
# be allowed to create databases. Passwords are never put in URLs: set PGPASSWORD (or use
# ~/.pgpass) and libpq, psycopg and asyncpg all pick it up.
#
# Closed by default: MLflow runs its basic-auth app (anonymous requests get 401), the Prefect
# server requires PREFECT_SERVER_API_AUTH_STRING, the API a bearer token, and every server
# binds to loopback (STACK_HOST). The credentials and the PII salt are generated once into
# $STACK_DIR/secrets.env (mode 600) and reused; they never appear on a command line, in a log
# or in the output of `up` (which prints the file's path, not its contents).
#
# `up` is idempotent and prints nothing but the export lines on stdout (progress goes to
# stderr), so this works as often as you like:   eval "$(infra/stack.sh up)"
# The lines export JOURNEY_HOME, the store URLs and (by sourcing secrets.env) the client
# credentials, so journey-ml, mlflow and prefect commands in that shell use the stack.
#
# Environment (defaults):
#   VENV            virtualenv with mlflow + prefect; when unset, <repo>/.venv
#   PGHOST/PGPORT/PGUSER   127.0.0.1 / 5432 / postgres
#   MLFLOW_PORT     5000      PREFECT_PORT   4200      STACK_HOST   127.0.0.1 (bind address)
#   API_PORT        8000      API_WORKERS    1
#   MLFLOW_WORKERS  1         STACK_TIMEOUT  180 s for the services to answer their health endpoints
#   MLFLOW_SERVER_ENABLE_JOB_EXECUTION  false  (MLflow's GenAI job runner: 7 more processes)
#   STACK_DIR       <repo>/.journey/stack  (pid files, logs, Prefect home)
#   MLFLOW_ARTIFACTS_DIR   $STACK_DIR/mlartifacts
#   STACK_DB_PREFIX ""  prefix of the four database names (journey, mlflow, mlflow_auth, prefect)
#   JOURNEY_PII_SALT / JOURNEY_API_TOKEN  seed secrets.env when it has none yet (else generated)
set -euo pipefail
# Everything this script creates (secrets, logs, pid files, stores) is private to its user.
umask 077

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
MLFLOW_ARTIFACTS_DIR="${MLFLOW_ARTIFACTS_DIR:-$STACK_DIR/mlartifacts}"
SECRETS_FILE="$STACK_DIR/secrets.env"
DB_PREFIX="${STACK_DB_PREFIX:-}"
[[ "$DB_PREFIX" =~ ^[a-z0-9_]*$ ]] || { echo "stack.sh: error: STACK_DB_PREFIX may hold a-z, 0-9 and _ only" >&2; exit 2; }
JOURNEY_HOME_DIR="$STACK_DIR/journey-home"
ADMIN_USER=admin
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

# curl with the Prefect server's basic-auth credentials, read from stdin so they never show
# on a command line (ps) or in a log.
prefect_curl() {
    printf 'user = "%s"\n' "${SECRET[PREFECT_API_AUTH_STRING]:-}" | curl -K - "$@"
}
mlflow_curl() {
    printf 'user = "%s:%s"\n' "${SECRET[MLFLOW_TRACKING_USERNAME]:-}" "${SECRET[MLFLOW_TRACKING_PASSWORD]:-}" \
        | curl -K - "$@"
}

healthy() {
    # deployments outlive the worker on the server: the worker is healthy only while it runs
    if [[ $1 == worker ]]; then
        running_pid worker >/dev/null || return 1
        prefect_curl -fsS -m 3 -o /dev/null "$(health_url worker)" 2>/dev/null
        return
    fi
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
        -v journey_db="${DB_PREFIX}journey" -v mlflow_db="${DB_PREFIX}mlflow" \
        -v mlflow_auth_db="${DB_PREFIX}mlflow_auth" -v prefect_db="${DB_PREFIX}prefect" \
        -f "$ROOT/infra/postgres-init.sql" >/dev/null \
        || die "could not create the databases ${DB_PREFIX}{journey,mlflow,mlflow_auth,prefect} as $PGUSER@$PGHOST:$PGPORT"
}

# The stack's secrets: KEY=value lines in $SECRETS_FILE (mode 600), generated once, kept.
# Loaded into the SECRET array; services get them in their environment only.
SECRET_KEYS=(JOURNEY_PII_SALT JOURNEY_API_TOKEN MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD
             MLFLOW_FLASK_SERVER_SECRET_KEY PREFECT_API_AUTH_STRING)
declare -gA SECRET=()
load_secrets() {
    local key value
    [[ -f "$SECRETS_FILE" ]] || return 0
    while IFS='=' read -r key value; do
        [[ "$key" =~ ^[A-Z][A-Z0-9_]*$ ]] && SECRET[$key]="$value"
    done <"$SECRETS_FILE"
}
new_secret() { "$VENV_DIR/bin/python" -c "import secrets; print(secrets.token_urlsafe(32))"; }
ensure_secrets() {
    local key value added=()
    load_secrets
    # a token from before secrets.env existed stays valid
    if [[ -z "${SECRET[JOURNEY_API_TOKEN]:-}" && -s "$STACK_DIR/api-token" ]]; then
        SECRET[JOURNEY_API_TOKEN]="$(<"$STACK_DIR/api-token")"
    fi
    for key in "${SECRET_KEYS[@]}"; do
        [[ -n "${SECRET[$key]:-}" ]] && continue
        case $key in
            JOURNEY_PII_SALT) value="${JOURNEY_PII_SALT:-$(new_secret)}" ;;
            JOURNEY_API_TOKEN) value="${JOURNEY_API_TOKEN:-$(new_secret)}" ;;
            MLFLOW_TRACKING_USERNAME) value="$ADMIN_USER" ;;
            PREFECT_API_AUTH_STRING) value="$ADMIN_USER:$(new_secret)" ;;
            *) value="$(new_secret)" ;;
        esac
        [[ "$value" =~ ^[A-Za-z0-9_.:~-]+$ ]] || die "$key must be letters, digits and _.:~- only (it is kept in $SECRETS_FILE)"
        SECRET[$key]="$value"
        added+=("$key")
    done
    if ((${#added[@]})); then
        {
            echo "# journey-ml stack secrets (generated by infra/stack.sh; keep this file private)."
            echo "# Changing JOURNEY_PII_SALT after data is loaded breaks erasure and joins on hashed PII."
            for key in "${SECRET_KEYS[@]}"; do echo "$key=${SECRET[$key]}"; done
        } >"$SECRETS_FILE.tmp"
        chmod 600 "$SECRETS_FILE.tmp"
        mv -f "$SECRETS_FILE.tmp" "$SECRETS_FILE"
        log "secrets: generated ${added[*]} into $SECRETS_FILE (mode 600; \`make credentials\` shows them)"
    fi
    chmod 600 "$SECRETS_FILE"
}

# MLflow's basic-auth configuration: no secret in it (the admin password comes from
# MLFLOW_AUTH_ADMIN_PASSWORD in the server's environment). Authenticated users other than
# the admin get no permission on what they do not own.
write_mlflow_auth_config() {
    cat >"$STACK_DIR/mlflow-auth.ini" <<INI
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = postgresql+psycopg://$PGUSER@$PGHOST:$PGPORT/${DB_PREFIX}mlflow_auth
admin_username = $ADMIN_USER
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
}

# start_service NAME "SECRET_VAR=KEY ..." CMD... : launch CMD in its own session (so `down`
# can stop the whole process group: MLflow forks uvicorn workers and job consumers) unless
# already running. Each VAR=KEY puts SECRET[KEY] in the service's environment as VAR: never
# on its command line, never in its log.
start_service() {
    local name=$1 secrets=$2 pid log port kv
    shift 2
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
    chmod 600 "$log"
    # fd 9 is the stack lock: the service must not inherit it.
    (
        for kv in $secrets; do export "${kv%%=*}=${SECRET[${kv#*=}]}"; done
        cd "$STACK_DIR" && exec setsid "$@" </dev/null >>"$log" 2>&1 9>&-
    ) &
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
    chmod 700 "$STACK_DIR"
    # tells `journey-ml demo` that this directory belongs to a stack (it never wipes it)
    : >"$STACK_DIR/.journey-stack"
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
    ensure_secrets
    mkdir -p "$MLFLOW_ARTIFACTS_DIR" "$STACK_DIR/prefect-home" "$JOURNEY_HOME_DIR"
    chmod 600 "$STACK_DIR"/*.log "$STACK_DIR"/*.log.1 2>/dev/null || true
    write_mlflow_auth_config
    local pg="$PGUSER@$PGHOST:$PGPORT"

    start_service mlflow "MLFLOW_AUTH_ADMIN_PASSWORD=MLFLOW_TRACKING_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY=MLFLOW_FLASK_SERVER_SECRET_KEY" \
        env MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}" \
        MLFLOW_AUTH_CONFIG_PATH="$STACK_DIR/mlflow-auth.ini" MLFLOW_AUTH_ADMIN_USERNAME="$ADMIN_USER" \
        "$VENV_DIR/bin/mlflow" server --app-name basic-auth \
        --backend-store-uri "postgresql+psycopg://$pg/${DB_PREFIX}mlflow" \
        --serve-artifacts --artifacts-destination "$MLFLOW_ARTIFACTS_DIR" \
        --host "$STACK_HOST" --port "$MLFLOW_PORT" --workers "$MLFLOW_WORKERS"

    # Own PREFECT_HOME (profiles, UI build) so the user's profile cannot redirect the server.
    # The server's own services call its API too: they get the client auth string as well.
    start_service prefect "PREFECT_SERVER_API_AUTH_STRING=PREFECT_API_AUTH_STRING PREFECT_API_AUTH_STRING=PREFECT_API_AUTH_STRING" \
        env -u PREFECT_API_URL -u PREFECT_API_KEY -u PREFECT_PROFILE \
        PREFECT_HOME="$STACK_DIR/prefect-home" \
        PREFECT_UI_STATIC_DIRECTORY="$STACK_DIR/prefect-home/ui" \
        PREFECT_UI_API_URL="$PREFECT_URL/api" \
        PREFECT_API_DATABASE_CONNECTION_URL="postgresql+asyncpg://$pg/${DB_PREFIX}prefect" \
        "$VENV_DIR/bin/prefect" server start --host "$STACK_HOST" --port "$PREFECT_PORT"

    # Both start in parallel.
    wait_healthy mlflow prefect
    smoke_check_auth

    # The compose file's one-shot `migrate`, then `api` and `worker` on the same stores.
    local app_env=(env JOURNEY_DATABASE_URL="postgresql+psycopg://$pg/${DB_PREFIX}journey"
                   JOURNEY_MLFLOW_TRACKING_URI="$MLFLOW_URL" JOURNEY_HOME="$JOURNEY_HOME_DIR"
                   PREFECT_API_URL="$PREFECT_URL/api")
    local client_secrets="JOURNEY_PII_SALT=JOURNEY_PII_SALT MLFLOW_TRACKING_USERNAME=MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD=MLFLOW_TRACKING_PASSWORD PREFECT_API_AUTH_STRING=PREFECT_API_AUTH_STRING"
    "${app_env[@]}" "$VENV_DIR/bin/journey-ml" db upgrade >&2 \
        || die "could not migrate the warehouse postgresql://$pg/${DB_PREFIX}journey"
    start_service api "$client_secrets JOURNEY_API_TOKEN=JOURNEY_API_TOKEN" "${app_env[@]}" \
        "$VENV_DIR/bin/journey-ml" serve --host "$STACK_HOST" --port "$API_PORT" --workers "$API_WORKERS"
    start_service worker "$client_secrets" "${app_env[@]}" "$VENV_DIR/bin/python" -m flows.serve
    wait_healthy api worker
    trap - EXIT

    log "stack is up; export these (or: eval \"\$(make -s up)\"); logins of the UIs: make credentials"
    print_exports
}

# Anonymous writes must be refused and the stack's own credentials accepted, on both servers.
smoke_check_auth() {
    local code
    code="$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d '{"name": "journey-stack-anonymous-probe"}' "$MLFLOW_URL/api/2.0/mlflow/experiments/create")"
    [[ "$code" == 401 || "$code" == 403 ]] || die "MLflow accepted (or failed on) an anonymous write (HTTP $code): it must run with --app-name basic-auth; see $(log_file mlflow)"
    mlflow_curl -fsS -m 10 -o /dev/null \
        "$MLFLOW_URL/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default" \
        || die "MLflow refuses the stack's admin login: its admin in database ${DB_PREFIX}mlflow_auth was created with another password than $SECRETS_FILE holds (restore that file, or drop the database to start over); see $(log_file mlflow)"
    code="$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d '{"name": "journey-stack-anonymous-probe"}' "$PREFECT_URL/api/flows/")"
    [[ "$code" == 401 || "$code" == 403 ]] || die "the Prefect server accepted (or failed on) an anonymous write (HTTP $code); see $(log_file prefect)"
    prefect_curl -fsS -m 10 -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' \
        "$PREFECT_URL/api/deployments/filter" \
        || die "the Prefect server refuses the stack's auth string; see $(log_file prefect)"
    log "auth: MLflow and Prefect refuse anonymous writes and accept the stack's credentials"
}

# What a shell needs to use the stack: stores, servers, and (sourced, not printed) secrets.
print_exports() {
    local pg="$PGUSER@$PGHOST:$PGPORT"
    printf 'export JOURNEY_HOME=%q\n' "$JOURNEY_HOME_DIR"
    echo "export JOURNEY_DATABASE_URL=postgresql+psycopg://$pg/${DB_PREFIX}journey"
    echo "export JOURNEY_MLFLOW_TRACKING_URI=$MLFLOW_URL"
    echo "export MLFLOW_TRACKING_URI=$MLFLOW_URL"
    echo "export PREFECT_API_URL=$PREFECT_URL/api"
    echo "export JOURNEY_API_URL=$API_URL"
    printf 'set -a; . %q; set +a\n' "$SECRETS_FILE"
}

cmd_credentials() {
    [[ -f "$SECRETS_FILE" ]] || die "no $SECRETS_FILE yet: run 'make up' first"
    load_secrets
    echo "# secrets of the stack in $SECRETS_FILE (mode 600); do not paste them anywhere shared"
    echo "MLflow UI   $MLFLOW_URL   user ${SECRET[MLFLOW_TRACKING_USERNAME]:-}   password ${SECRET[MLFLOW_TRACKING_PASSWORD]:-}"
    echo "Prefect UI  $PREFECT_URL   user ${SECRET[PREFECT_API_AUTH_STRING]%%:*}   password ${SECRET[PREFECT_API_AUTH_STRING]#*:}"
    echo "API         $API_URL   Authorization: Bearer ${SECRET[JOURNEY_API_TOKEN]:-}"
    echo "PII salt    JOURNEY_PII_SALT=${SECRET[JOURNEY_PII_SALT]:-}"
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
    load_secrets
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
    credentials) cmd_credentials ;;
    *) echo "usage: $0 up|down|status|credentials" >&2; exit 2 ;;
esac
