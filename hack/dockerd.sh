#!/usr/bin/env bash
# The Docker engine the images and pod tests need, on a machine where none runs.
#
#   hack/dockerd.sh start   nothing when `docker info` answers; otherwise starts dockerd
#                           (Debian's docker.io) in the background and waits for it
#   hack/dockerd.sh stop    stops the dockerd that `start` started, by its PID, and
#                           nothing else
#
# A machine without an init system (a CI container, a microVM) has no service to ask,
# so dockerd runs as a plain process; its PID and log are in $DOCKERD_DIR (default
# /run/monero-operator-dockerd). When dockerd cannot start, the error is printed and the
# script exits 0: the tests that need an engine then skip and say so.
set -uo pipefail
state=${DOCKERD_DIR:-/run/monero-operator-dockerd}

start() {
  docker info >/dev/null 2>&1 && return 0
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd: not installed (hack/deps.sh installs docker.io)" >&2
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "dockerd: not started: it needs root" >&2
    return 0
  fi
  mkdir -p "$state"
  # dockerd needs the cgroup hierarchy; a bare machine may not have it mounted.
  if ! mountpoint -q /sys/fs/cgroup 2>/dev/null; then
    mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || echo "dockerd: could not mount /sys/fs/cgroup" >&2
  fi
  echo "dockerd: starting (log: $state/dockerd.log)" >&2
  nohup dockerd --host=unix:///var/run/docker.sock >"$state/dockerd.log" 2>&1 &
  echo $! >"$state/dockerd.pid"
  local deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "dockerd: did not start; its last lines:" >&2
      tail -5 "$state/dockerd.log" >&2
      rm -f "$state/dockerd.pid"
      return 0
    fi
    sleep 0.5
  done
  echo "dockerd: running (pid $(cat "$state/dockerd.pid"))" >&2
}

stop() {
  [ -f "$state/dockerd.pid" ] || return 0
  local pid
  pid=$(cat "$state/dockerd.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$state/dockerd.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: hack/dockerd.sh start|stop" >&2; exit 2 ;;
esac
