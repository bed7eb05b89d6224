# shellcheck shell=bash disable=SC2034
# Shared by scripts/demo and scripts/bench: a throwaway docker-registry (plain HTTP) on
# 127.0.0.1. Sourced, not run.
#
#   registry_start DIR   starts it with its config, storage and log under DIR, on a free port;
#                        sets REGISTRY_PID, REGISTRY_PORT and REGISTRY_HOST (127.0.0.1:PORT)
#   registry_stop        stops it (SIGTERM, then SIGKILL after 5 s); safe to call twice
#
# The caller stops it from its EXIT trap.

REGISTRY_PID='' REGISTRY_PORT='' REGISTRY_HOST=''

# Whether a TCP socket of this machine is bound to port $1 (any address, any state).
registry_port_taken() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

registry_start() {
  local dir=$1 port i _
  mkdir -p "$dir/storage"
  for _ in 1 2 3 4 5; do
    # Below the kernel's ephemeral range (32768-60999), so that no client socket takes it.
    port=$((20000 + RANDOM % 12000))
    registry_port_taken "$port" && continue
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: ocistore-local-registry
EOF
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
    REGISTRY_PID=$!
    for ((i = 0; i < 300; i++)); do
      if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/v2/" 2>/dev/null; then
        REGISTRY_PORT=$port
        REGISTRY_HOST=127.0.0.1:$port
        return 0
      fi
      kill -0 "$REGISTRY_PID" 2>/dev/null || break
      sleep 0.1
    done
    registry_stop
    # Another process took the port between the check and the bind: try another one.
    grep -q 'address already in use' "$dir/registry.log" && continue
    echo "docker-registry did not start:" >&2
    cat "$dir/registry.log" >&2
    return 1
  done
  echo "docker-registry: no free port found" >&2
  return 1
}

registry_stop() {
  [ -n "${REGISTRY_PID:-}" ] || return 0
  local pid=$REGISTRY_PID i
  REGISTRY_PID=
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    # A child that has exited but not been waited for is a zombie: "Z" in /proc/PID/stat.
    [ -r "/proc/$pid/stat" ] || break
    [[ $(cut -d ' ' -f 3 "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
