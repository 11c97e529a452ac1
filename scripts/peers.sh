# Real peers for the end-to-end tests: MLServer (PyPI, pinned, in a
# virtualenv under .tools) and HAProxy (Debian) for the cluster test, an
# MLflow tracking server (PyPI, pinned, its own virtualenv) for the registry
# import test, and the Standard Webhooks verifier (PyPI) for the notification
# tests, and Prometheus (Debian) for the analysis gates. Sourced by lib.sh.
MLSERVER_VERSION=1.7.1
MLFLOW_VERSION=3.17.2
# The independent Standard Webhooks verifier of the notification tests (PyPI).
STANDARDWEBHOOKS_VERSION=1.3.0

# Installs MLflow into its own virtualenv when missing (about 40 s and 850 MB,
# once); quiet, so it can run in the background beside the MLServer install.
install_mlflow() {
  local venv="$1"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "mlflow==$MLFLOW_VERSION"
}

ensure_peers() {
  # Prometheus (Debian) for the analysis gate tests (server/tests/analysis.rs).
  apt_install haproxy python3-venv prometheus
  local venv="$TOOLS/venv" mlflow_venv="$TOOLS/mlflow-venv" mlflow_pid=""
  mkdir -p "$TOOLS"
  # Checked by its dist-info directory: importing mlflow takes seconds.
  if ! compgen -G "$mlflow_venv/lib/python3*/site-packages/mlflow-$MLFLOW_VERSION.dist-info" >/dev/null \
    || [ ! -x "$mlflow_venv/bin/mlflow" ]; then
    say "installing MLflow $MLFLOW_VERSION into $mlflow_venv in the background (about a minute, once)"
    install_mlflow "$mlflow_venv" >"$TOOLS/mlflow-install.log" 2>&1 &
    mlflow_pid=$!
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
  export SWITCHYARD_MLSERVER="$venv/bin/mlserver"
  # server/tests/api/notifications.rs verifies signatures with it.
  export SWITCHYARD_WEBHOOK_PYTHON="$venv/bin/python"
  if [ -n "$mlflow_pid" ] && ! wait "$mlflow_pid"; then
    cat "$TOOLS/mlflow-install.log" >&2
    echo "installing MLflow $MLFLOW_VERSION failed (log above)" >&2
    return 1
  fi
  export SWITCHYARD_MLFLOW="$mlflow_venv/bin/mlflow"
  SWITCHYARD_HAPROXY="$(command -v haproxy)"
  export SWITCHYARD_HAPROXY
  SWITCHYARD_PROMETHEUS="$(command -v prometheus)"
  export SWITCHYARD_PROMETHEUS
  # The peers test fails instead of skipping when the test command runs it.
  export SWITCHYARD_PEERS_REQUIRED=1
}
