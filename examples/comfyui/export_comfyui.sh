#!/usr/bin/env bash
# Writes a ComfyUI source tree from a git directory (a bare clone or a mirror), to carry to a
# machine that cannot fetch it. Reads the git directory only.
#
# Usage: examples/comfyui/export_comfyui.sh GIT_DIR DEST [REV] [--slim] [--tar FILE.tar.gz]
#   REV      commit or tag (default HEAD)
#   --slim   leave out what the harness never loads: the tokenizer data of other text encoders
#            (comfy/text_encoders/*_tokenizer/; SD1.5's, comfy/sd1_tokenizer/, stays), the API
#            nodes (comfy_api_nodes/, loaded only by init_extra_nodes), tests, CI files
#   --tar    also pack DEST into FILE.tar.gz (one file to carry; unpack with tar -xzf)
#
# A blob the git directory lacks (a snapshot can leave its largest files out) is skipped and
# named; the export still succeeds unless a file the harness needs is among them.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 64
}
positional=() slim=0 tarball=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --slim) slim=1; shift ;;
    --tar) tarball=$2; shift 2 ;;
    -h | --help) usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
[[ ${#positional[@]} -ge 2 ]] || usage
git_dir=${positional[0]} dest=${positional[1]} rev=${positional[2]:-HEAD}

git --git-dir="$git_dir" rev-parse --verify --quiet "$rev^{commit}" >/dev/null ||
  { echo "export_comfyui.sh: $rev is not a commit in $git_dir" >&2; exit 1; }
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

leave_out() {
  ((slim)) || return 1
  case $1 in
    comfy/text_encoders/*_tokenizer/* | comfy_api_nodes/* | tests/* | tests-unit/* | .github/* | \
      .ci/* | script_examples/*) return 0 ;;
  esac
  return 1
}

written=0 missing=()
while IFS=$'\t' read -r meta path; do
  read -r mode type object <<<"$meta"
  [[ $type == blob ]] || continue
  leave_out "$path" && continue
  mkdir -p "$dest/$(dirname "$path")"
  if [[ $mode == 120000 ]]; then
    ln -sfn "$(git --git-dir="$git_dir" cat-file blob "$object")" "$dest/$path"
  elif git --git-dir="$git_dir" cat-file blob "$object" >"$dest/$path" 2>/dev/null; then
    [[ $mode == 100755 ]] && chmod +x "$dest/$path"
  else
    rm -f "$dest/$path"
    missing+=("$path")
    continue
  fi
  written=$((written + 1))
done < <(git --git-dir="$git_dir" ls-tree -r "$rev")

echo "export_comfyui.sh: $written files from $(git --git-dir="$git_dir" rev-parse --short "$rev") to $dest"
if ((${#missing[@]})); then
  echo "export_comfyui.sh: not in the git directory, left out: ${missing[*]}"
fi
for needed in nodes.py execution.py folder_paths.py cuda_malloc.py comfy/sd.py \
  comfy/sd1_clip_config.json comfy/sd1_tokenizer/vocab.json comfy/sd1_tokenizer/merges.txt; do
  [[ -e $dest/$needed ]] || { echo "export_comfyui.sh: $needed is missing: the harness needs it" >&2; exit 1; }
done
if [[ -n $tarball ]]; then
  tar -czf "$tarball" -C "$(dirname "$dest")" "$(basename "$dest")"
  echo "export_comfyui.sh: packed into $tarball ($(du -h "$tarball" | cut -f1))"
fi
