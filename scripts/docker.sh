#!/usr/bin/env bash
# A Docker engine for the container task tests (Debian's docker.io). Idempotent: does nothing when
# `docker info` already answers. Needs root and Debian's package registry; prints why and exits 0 where
# it cannot (the container tests then skip, saying so). The daemon keeps its data in
# /var/lib/openbatch-docker; no registry is reachable here, so it makes no bridge network and touches no
# iptables rule (the tests' containers need no network).
set -uo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "docker.sh: not root: Docker is not installed; the container tests will skip" >&2; exit 0
fi
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null || ! command -v docker-registry >/dev/null \
    || ! command -v htpasswd >/dev/null; then
  # docker-registry and htpasswd (apache2-utils): a local registry with a password, for containerRegistries
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io \
      docker-registry apache2-utils >/dev/null; } \
    || { echo "docker.sh: apt-get could not install docker.io; the container tests will skip" >&2; exit 0; }
fi
systemctl disable --now docker-registry >/dev/null 2>&1 || true   # the tests start their own
if timeout 10 docker info >/dev/null 2>&1; then
  exit 0
fi
mkdir -p /var/lib/openbatch-docker /var/log
pgrep -x containerd >/dev/null || { containerd >/var/log/openbatch-containerd.log 2>&1 & }
nohup dockerd --data-root /var/lib/openbatch-docker --iptables=false --ip6tables=false --bridge=none \
  --containerd /run/containerd/containerd.sock >/var/log/openbatch-dockerd.log 2>&1 &
for _ in $(seq 1 100); do
  if timeout 5 docker info >/dev/null 2>&1; then exit 0; fi
  sleep 0.2
done
echo "docker.sh: dockerd did not come up: $(tail -n 5 /var/log/openbatch-dockerd.log 2>&1 | tr '\n' ' ')" >&2
exit 0
