# Real serving peers for the end-to-end cluster test: MLServer (PyPI, pinned,
# in a virtualenv under .tools) and HAProxy (Debian). Sourced by lib.sh.
MLSERVER_VERSION=1.7.1
# The independent Standard Webhooks verifier of the notification tests (PyPI).
STANDARDWEBHOOKS_VERSION=1.3.0

ensure_peers() {
  apt_install haproxy python3-venv
  local venv="$TOOLS/venv"
  if ! "$venv/bin/mlserver" --version 2>/dev/null | grep -q "$MLSERVER_VERSION"; then
    say "installing MLServer $MLSERVER_VERSION into $venv (about a minute, once)"
    mkdir -p "$TOOLS"
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
  SWITCHYARD_HAPROXY="$(command -v haproxy)"
  export SWITCHYARD_HAPROXY
  # The peers test fails instead of skipping when the test command runs it.
  export SWITCHYARD_PEERS_REQUIRED=1
}
