#!/usr/bin/env bash
# make demo: the provider simulator (config/simulator.example.yaml) and a daemon probing it.
# Everything listens on 127.0.0.1. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
mkdir -p data/demo
"$BIN/scd-simulator" config/simulator.example.yaml \
  --workdir data/demo/simulator --catalog-out data/demo/catalog.yaml > data/demo/simulator.ready &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -s data/demo/simulator.ready ] && break; sleep 0.2; done
cat data/demo/simulator.ready
"$BIN/scd-monitor" run --catalog data/demo/catalog.yaml \
  --database-url sqlite:///data/demo/demo.db --vantage demo
