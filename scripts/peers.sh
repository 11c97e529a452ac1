# Real peers for the end-to-end tests: MLServer (PyPI, pinned, in a
# virtualenv under .tools) and HAProxy (Debian) for the cluster test, an
# MLflow tracking server (PyPI, pinned, its own virtualenv) for the registry
# import test, the Standard Webhooks verifier (PyPI) for the notification
# tests, PyNaCl (PyPI) for the auditor's export checker, schemathesis (PyPI,
# its own virtualenv) for the API fuzzing test, and kubectl (Debian) for the
# Kubernetes driver's tests, Prometheus (Debian) for the analysis gates, and
# the OpenID provider oidc-provider (npm) for the single sign-on tests.
# Sourced by lib.sh.
MLSERVER_VERSION=1.7.1
MLFLOW_VERSION=3.17.2
# The independent Standard Webhooks verifier of the notification tests (PyPI).
STANDARDWEBHOOKS_VERSION=1.3.0
# The auditor's export checker (scripts/verify_audit_export.py) checks Ed25519 with it (PyPI).
PYNACL_VERSION=1.6.2
# Fuzzes the REST API from its OpenAPI document (server/tests/api/fuzz.rs).
SCHEMATHESIS_VERSION=4.32.5

# Installs MLflow into its own virtualenv when missing (about 40 s and 850 MB,
# once); quiet, so it can run in the background beside the MLServer install.
install_mlflow() {
  local venv="$1"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # [auth]: Flask-WTF for MLflow's basic-auth app (server/tests/mlflow.rs runs one).
  "$venv/bin/pip" install -q "mlflow[auth]==$MLFLOW_VERSION"
}

# Installs schemathesis into its own virtualenv when missing (about 20 s, once);
# quiet, so it can run in the background beside the other installs.
install_schemathesis() {
  local venv="$1"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
}

ensure_peers() {
  # Prometheus (Debian) for the analysis gate tests (server/tests/analysis.rs).
  apt_install haproxy python3-venv prometheus
  local venv="$TOOLS/venv" mlflow_venv="$TOOLS/mlflow-venv" mlflow_pid=""
  local st_venv="$TOOLS/schemathesis-venv" st_pid=""
  mkdir -p "$TOOLS"
  # Checked by its dist-info directory: importing mlflow takes seconds.
  if ! compgen -G "$mlflow_venv/lib/python3*/site-packages/mlflow-$MLFLOW_VERSION.dist-info" >/dev/null \
    || ! compgen -G "$mlflow_venv/lib/python3*/site-packages/flask_wtf" >/dev/null \
    || [ ! -x "$mlflow_venv/bin/mlflow" ]; then
    say "installing MLflow $MLFLOW_VERSION into $mlflow_venv in the background (about a minute, once)"
    install_mlflow "$mlflow_venv" >"$TOOLS/mlflow-install.log" 2>&1 &
    mlflow_pid=$!
  fi
  if ! compgen -G "$st_venv/lib/python3*/site-packages/schemathesis-$SCHEMATHESIS_VERSION.dist-info" >/dev/null \
    || [ ! -x "$st_venv/bin/schemathesis" ]; then
    say "installing schemathesis $SCHEMATHESIS_VERSION into $st_venv in the background (once)"
    install_schemathesis "$st_venv" >"$TOOLS/schemathesis-install.log" 2>&1 &
    st_pid=$!
  fi
  # The real OpenID provider of the single sign-on tests (server/tests/api/sso.rs,
  # end2end/tests/sso.test.mjs): npm's oidc-provider, pinned by its package-lock.json,
  # into the ignored server/tests/oidc/node_modules (a few seconds, once).
  local oidc_dir="$ROOT/server/tests/oidc" oidc_pid=""
  if [ ! -f "$oidc_dir/node_modules/oidc-provider/package.json" ]; then
    say "installing oidc-provider (npm) for the single sign-on tests in the background (once)"
    (cd "$oidc_dir" && npm ci --no-audit --no-fund --silent) >"$TOOLS/oidc-install.log" 2>&1 &
    oidc_pid=$!
  fi
  if ! "$venv/bin/mlserver" --version 2>/dev/null | grep -q "$MLSERVER_VERSION"; then
    say "installing MLServer $MLSERVER_VERSION into $venv (about a minute, once)"
    python3 -m venv "$venv"
    # pandas 3 breaks MLServer 1.7.1's codec on text columns.
    "$venv/bin/pip" install -q "mlserver==$MLSERVER_VERSION" "pandas<3"
  fi
  if ! "$venv/bin/python" -c "import standardwebhooks" 2>/dev/null; then
    say "installing standardwebhooks $STANDARDWEBHOOKS_VERSION into $venv"
    "$venv/bin/pip" install -q "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
  fi
  if ! "$venv/bin/python" -c "import nacl.signing" 2>/dev/null; then
    say "installing PyNaCl $PYNACL_VERSION into $venv"
    "$venv/bin/pip" install -q "pynacl==$PYNACL_VERSION"
  fi
  export SWITCHYARD_MLSERVER="$venv/bin/mlserver"
  # server/tests/export_backup.rs runs the auditor's script with it.
  export SWITCHYARD_AUDIT_PYTHON="$venv/bin/python"
  # server/tests/api/notifications.rs verifies signatures with it.
  export SWITCHYARD_WEBHOOK_PYTHON="$venv/bin/python"
  if [ -n "$mlflow_pid" ] && ! wait "$mlflow_pid"; then
    cat "$TOOLS/mlflow-install.log" >&2
    echo "installing MLflow $MLFLOW_VERSION failed (log above)" >&2
    return 1
  fi
  export SWITCHYARD_MLFLOW="$mlflow_venv/bin/mlflow"
  if [ -n "$st_pid" ] && ! wait "$st_pid"; then
    cat "$TOOLS/schemathesis-install.log" >&2
    echo "installing schemathesis $SCHEMATHESIS_VERSION failed (log above)" >&2
    return 1
  fi
  if [ -n "$oidc_pid" ] && ! wait "$oidc_pid"; then
    cat "$TOOLS/oidc-install.log" >&2
    echo "installing oidc-provider failed (log above)" >&2
    return 1
  fi
  export SWITCHYARD_OIDC_PROVIDER="$oidc_dir/provider.mjs"
  # server/tests/api/fuzz.rs runs it against a real server.
  export SWITCHYARD_SCHEMATHESIS="$st_venv/bin/schemathesis"
  SWITCHYARD_HAPROXY="$(command -v haproxy)"
  export SWITCHYARD_HAPROXY
  SWITCHYARD_PROMETHEUS="$(command -v prometheus)"
  export SWITCHYARD_PROMETHEUS
  # The real kubectl reads and writes the fake Kubernetes API server of
  # server/tests/kubernetes.rs (no API server can run here). Debian's
  # kubernetes-client where the machine image has no kubectl of its own.
  command -v kubectl >/dev/null || apt_install kubernetes-client
  # The peers test fails instead of skipping when the test command runs it.
  export SWITCHYARD_PEERS_REQUIRED=1
}

# One MLflow tracking server for the whole test run (SWITCHYARD_MLFLOW_URL),
# started in the background so that its start-up (30-100 s) overlaps the
# build instead of a test: the tests that can share it (own model names,
# imports limited to them) use it, the others start their own (see
# server/tests/mlflow.rs). Stopped with its worker processes when the
# calling script exits.
start_shared_mlflow() {
  [ -n "${SWITCHYARD_MLFLOW:-}" ] || return 0
  local dir port
  dir="$(mktemp -d "${TMPDIR:-/tmp}/switchyard-shared-mlflow.XXXXXX")"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # Its own process group (setsid), whose id it writes down before becoming
  # MLflow: setsid forks when the caller runs jobs in their own groups (set -m).
  MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true setsid bash -c 'echo $$ >"$0/pgid"; exec "$@"' \
    "$dir" "$SWITCHYARD_MLFLOW" server \
    --backend-store-uri "sqlite:///$dir/mlflow.db" --default-artifact-root "$dir/artifacts" \
    --host 127.0.0.1 --port "$port" --workers 1 >"$dir/mlflow.log" 2>&1 &
  SHARED_MLFLOW_DIR="$dir"
  trap stop_shared_mlflow EXIT
  export SWITCHYARD_MLFLOW_URL="http://127.0.0.1:$port"
  say "shared MLflow for the tests starting at $SWITCHYARD_MLFLOW_URL (log: $dir/mlflow.log)"
}

stop_shared_mlflow() {
  [ -n "${SHARED_MLFLOW_DIR:-}" ] || return 0
  local pgid i
  pgid="$(cat "$SHARED_MLFLOW_DIR/pgid" 2>/dev/null || true)"
  if [ -n "$pgid" ]; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -rf "$SHARED_MLFLOW_DIR"
}
