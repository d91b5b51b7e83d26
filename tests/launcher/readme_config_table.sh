#!/usr/bin/env bash
# The README's configuration table must be exactly what `cudefrag config --markdown` prints, so
# the documentation cannot drift from the one table the shim parses.
# Usage: readme_config_table.sh LAUNCHER README [--update]
set -euo pipefail
launcher=$1 readme=$2
expected=$("$launcher" config --markdown)
actual=$(sed -n '/<!-- config-table:begin -->/,/<!-- config-table:end -->/p' "$readme" | sed '1d;$d')
if [[ ${3:-} == --update ]]; then
  { sed '/<!-- config-table:begin -->/q' "$readme"; printf '%s\n' "$expected"
    sed -n '/<!-- config-table:end -->/,$p' "$readme"; } >"$readme.new"
  mv "$readme.new" "$readme"
  exit 0
fi
if [[ "$expected" != "$actual" ]]; then
  echo "README.md's configuration table differs from 'cudefrag config --markdown':" >&2
  diff <(printf '%s\n' "$actual") <(printf '%s\n' "$expected") >&2 || true
  echo "update it with: $0 $launcher $readme --update" >&2
  exit 1
fi
echo "README configuration table matches"
