#!/usr/bin/env bash
# Debian/Ubuntu packages the tests and the demo use: promtool (prometheus), amtool
# (prometheus-alertmanager), the Pushgateway and the PostgreSQL server (the tests start throwaway
# clusters with scripts/start-postgres.sh) and chromium (the browser test of the Dagster UI).
# Installs only what is missing; starts nothing.
set -euo pipefail

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null 2>&1 || need+=(prometheus-pushgateway)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 \
  || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing Debian packages: ${need[*]}"
$sudo apt-get update -qq
# the packages ship services; nothing here needs them running (tests and the demo start their own)
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for svc in prometheus prometheus-alertmanager prometheus-pushgateway postgresql; do
  $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
