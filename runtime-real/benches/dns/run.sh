#!/bin/bash
# hawser's DNS beside dnsdist, unbound and dnsmasq, in one run, on loopback (127.0.0.0/8).
# Installs the Debian packages it needs, runs dns_bench.py, writes the tables.
# Usage (as root, from anywhere, after `cargo build --release`):
#   runtime-real/benches/dns/run.sh [dns_bench.py options, e.g. --runs 3]
# Results: $OUT (default /tmp/hawser-dns-bench-results): dns-results.json, dns-run.log,
# tables.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HAWSER=${HAWSER:-$HERE/../../../target/release/hawser}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin   # Debian's programs and python3
OUT=${OUT:-/tmp/hawser-dns-bench-results}
[[ -x $HAWSER ]] || { echo "no hawser binary at $HAWSER: run cargo build --release first" >&2; exit 2; }
pkgs=(dnsdist unbound dnsmasq-base dnsperf knot bind9-dnsutils nftables iproute2 util-linux)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
mkdir -p "$OUT"
/usr/bin/python3 "$HERE/dns_bench.py" --out "$OUT/dns-results.json" "$@" 2>&1 | tee "$OUT/dns-run.log"
/usr/bin/python3 "$HERE/dns_summary.py" "$OUT/dns-results.json" > "$OUT/tables.md"
echo "tables: $OUT/tables.md"
