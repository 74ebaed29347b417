#!/usr/bin/env bash
# Installs what cpvip's demo and tests need on Debian, idempotently: only missing packages are
# installed, and Debian's service start-up is held off during the install so no router daemon
# starts in the host's namespace (the lab runs its own, in namespaces).
set -euo pipefail

packages=(bird2 frr keepalived iproute2 iputils-ping tcpdump curl procps psmisc util-linux
          libcap2-bin python3 python3-kubernetes systemd ca-certificates)

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run as root (the lab creates network namespaces and binds addresses)" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust with rustup (https://rustup.rs); the toolchain" >&2
  echo "       version is pinned in rust-toolchain.toml and rustup fetches it on first use." >&2
  exit 2
fi
