#!/usr/bin/env bash
# Spark GPU discovery script (spark.{driver,executor}.resource.gpu.discoveryScript): prints the GPUs of this
# machine in Spark's ResourceInformation JSON, e.g. {"name": "gpu", "addresses": ["0","1"]}.
# NVIDIA GPUs come from nvidia-smi; without it, OpenCL GPU devices from clinfo, numbered in the order
# OpenCL lists them (the same numbering as ouro's device spec gpu:<n>). No GPU: an empty address list.
set -u
addresses=()
if command -v nvidia-smi >/dev/null 2>&1 && out=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null); then
  while IFS= read -r line; do
    line=${line//[[:space:]]/}
    [[ $line =~ ^[0-9]+$ ]] && addresses+=("$line")
  done <<<"$out"
elif command -v clinfo >/dev/null 2>&1 && out=$(clinfo 2>/dev/null); then
  n=0
  while IFS= read -r line; do
    if [[ $line =~ ^[[:space:]]*Device\ Type[[:space:]]+(.*)$ ]]; then
      case "${BASH_REMATCH[1]}" in
        *GPU*) addresses+=("$n"); n=$((n + 1)) ;;
      esac
    fi
  done <<<"$out"
fi
json=""
for a in "${addresses[@]+"${addresses[@]}"}"; do
  json+="${json:+,}\"$a\""
done
printf '{"name": "gpu", "addresses": [%s]}\n' "$json"
