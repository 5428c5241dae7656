#!/usr/bin/env bash
# Sourced by scripts/setup.sh and scripts/setup_verl.sh before they install anything.
# require_free_gb TAG PATH DEFAULT_GB: exit 1 with one line unless PATH's disk has DGPO_MIN_FREE_GB
# (default DEFAULT_GB) GB free; a full disk would otherwise fail half-way through pip.
require_free_gb() {
  local tag="$1" path="$2" need="${DGPO_MIN_FREE_GB:-$3}" free_gb
  free_gb="$(df -Pk "$path" | awk 'NR==2 {print int($4 / 1048576)}')"
  if [ "$free_gb" -lt "$need" ]; then
    echo "[$tag] DGPO_MIN_FREE_GB: installing into $path needs about $need GB free on its disk; $free_gb GB free" >&2
    exit 1
  fi
}
