#!/bin/sh
# `cudefrag report --html` as a browser shows it: renders the pages of a real H200 OOM trace and
# of the golden OOM trace in headless Chromium, checks the screenshots (size, not blank, the
# chart colours drawn) and the rendered DOM (the charts' SVG elements and their labels).
#   tests/analyzer/report/html_screenshot_test.sh CUDEFRAG_BINARY SOURCE_DIR
# Without Chromium the test fails (CI installs it) unless CUDEFRAG_SKIP_BROWSER_TESTS=1, which
# skips it (exit 77, ctest's SKIP_RETURN_CODE).
set -eu
cudefrag=${1:?usage: $0 CUDEFRAG_BINARY SOURCE_DIR}
source=${2:?usage: $0 CUDEFRAG_BINARY SOURCE_DIR}

if [ "${CUDEFRAG_SKIP_BROWSER_TESTS:-0}" = 1 ]; then
  echo "skipped: CUDEFRAG_SKIP_BROWSER_TESTS=1"
  exit 77
fi
browser=""
for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then
    browser=$candidate
    break
  fi
done
if [ -z "$browser" ]; then
  echo "FAIL: headless Chromium is needed to check the HTML report and none was found" >&2
  echo "      (apt-get install chromium, as scripts/install-deps.sh does), or set" >&2
  echo "      CUDEFRAG_SKIP_BROWSER_TESTS=1 to skip this test" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cudefrag-html-XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0
fail() {
  echo "FAIL: $*" >&2
  failed=1
}

# Screenshot and DOM in one browser start (Chromium does both in order); each page gets its own
# profile so the two browsers run side by side without handing the work to each other.
render() {
  "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
    --force-device-scale-factor=1 --user-data-dir="$work/profile-$1" \
    --screenshot="$work/$1.png" --dump-dom --window-size=1400,2400 "file://$work/$1.html" \
    >"$work/$1.dom" 2>"$work/$1.log"
}

"$cudefrag" report --html "$work/h200.html" "$source/examples/traces/h200/pytorch-oom-1gib.cdtrace" \
  >/dev/null || fail "cudefrag report --html failed on the H200 trace"
"$cudefrag" report --html "$work/golden.html" "$source/examples/traces/oom.trace" >/dev/null ||
  fail "cudefrag report --html failed on the golden trace"
[ "$failed" = 0 ] || exit 1

render h200 &
h200=$!
render golden &
golden=$!
wait "$h200" || fail "$browser could not render the H200 page (see below)"
wait "$golden" || fail "$browser could not render the golden page (see below)"

for page in h200 golden; do
  if [ ! -s "$work/$page.dom" ]; then
    # An older Chromium does only one of --screenshot and --dump-dom per start.
    "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
      --user-data-dir="$work/profile-$page" --dump-dom "file://$work/$page.html" \
      >"$work/$page.dom" 2>>"$work/$page.log" || true
  fi
done

# The PNG read with zlib only (no imaging library on CI): size, share of dark (text) pixels,
# and pixels in the colours of the live line, the physical line and the OOM marker (colours the
# rest of the page does not use, bar the legend's short swatches).
check_png() {
  python3 - "$@" <<'EOF'
import struct, sys, zlib, re
from itertools import accumulate

path, want_w, want_h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
needs = dict(arg.split("=") for arg in sys.argv[4:])
try:
    data = open(path, "rb").read()
except OSError as e:
    sys.exit(f"no screenshot: {e}")
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit(f"{path} is not a PNG")
pos, idat = 8, []
while pos + 8 <= len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat.append(body)
    pos += 12 + n
if (w, h) != (want_w, want_h):
    sys.exit(f"screenshot is {w}x{h}, not {want_w}x{want_h}")
if depth != 8 or ctype not in (2, 6) or interlace:
    sys.exit(f"unexpected PNG layout (depth {depth}, colour type {ctype}, interlace {interlace})")
bpp = 3 if ctype == 2 else 4
n = w * bpp
raw = zlib.decompress(b"".join(idat))
low = int.from_bytes(b"\x7f" * n, "big")
high = int.from_bytes(b"\x80" * n, "big")
nonzero = re.compile(b"[^\x00]")


def up(line, prev):  # bytewise (line + prev) mod 256, eight bits at a time in one integer
    x, y = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def sub(line):
    cur = bytearray(n)
    for c in range(bpp):
        cur[c::bpp] = bytes(v & 255 for v in accumulate(line[c::bpp]))
    return bytes(cur)


def average(line, prev):
    cur = bytearray(line)
    for k in range(n):
        left = cur[k - bpp] if k >= bpp else 0
        cur[k] = (cur[k] + ((left + prev[k]) >> 1)) & 255
    return bytes(cur)


def paeth(line, prev):
    # Where a filtered byte is 0 and the pixel to its left equals the one above that, the byte
    # equals the one above it: start from the row above and work only where the row differs.
    cur = bytearray(prev)
    m = nonzero.search(line)
    k, same = (m.start() if m else n), 0
    while k < n:
        a = cur[k - bpp] if k >= bpp else 0
        b = prev[k]
        c = prev[k - bpp] if k >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        v = (line[k] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        cur[k] = v
        same = same + 1 if v == b and line[k] == 0 else 0
        k += 1
        if same >= bpp:
            m = nonzero.search(line, k)
            k, same = (m.start() if m else n), 0
    return bytes(cur)


def near(target):  # a translate table: 1 for channel values within 16 of target
    return bytes(1 if abs(v - target) <= 16 else 0 for v in range(256))


colours = {"blue": (0x2C, 0x72, 0xC2), "orange": (0xE6, 0x86, 0x2A), "red": (0xD6, 0x27, 0x28)}
tables = {name: [near(t) for t in rgb] for name, rgb in colours.items()}
dark = bytes(1 if v < 100 else 0 for v in range(256))
counts = dict.fromkeys(colours, 0)
dark_pixels = white_pixels = 0
prev = bytes(n)
for i in range(h):
    kind, line = raw[i * (n + 1)], raw[i * (n + 1) + 1:(i + 1) * (n + 1)]
    cur = (line if kind == 0 else sub(line) if kind == 1 else up(line, prev) if kind == 2
           else average(line, prev) if kind == 3 else paeth(line, prev))
    prev = cur
    chans = [cur[c::bpp] for c in range(3)]
    r, g, b = (int.from_bytes(ch, "big") for ch in chans)
    white_pixels += (r & g & b).to_bytes(w, "big").count(255)
    d = [int.from_bytes(ch.translate(dark), "big") for ch in chans]
    dark_pixels += bin(d[0] & d[1] & d[2]).count("1")
    for name, t in tables.items():
        m = [int.from_bytes(ch.translate(t[c]), "big") for c, ch in enumerate(chans)]
        counts[name] += bin(m[0] & m[1] & m[2]).count("1")
pixels = w * h
print(f"{path}: {w}x{h}, {pixels - white_pixels} non-white pixels, {dark_pixels} dark, "
      + ", ".join(f"{counts[k]} {k}" for k in colours), flush=True)
problems = []
if pixels - white_pixels < pixels // 10:
    problems.append("the page is (nearly) blank")
if dark_pixels < pixels // 500:
    problems.append("hardly any text was drawn")
for name, least in needs.items():
    if counts[name] < int(least):
        problems.append(f"fewer than {least} {name} pixels (the chart's {name} was not drawn)")
if problems:
    sys.exit(f"{path}: " + "; ".join(problems))
EOF
}

# The H200 OOM trace: one OOM; physical memory is within 2 MiB of live, so its line hides
# under the live line.
check_png "$work/h200.png" 1400 2400 blue=600 red=200 || fail "H200 screenshot"
check_png "$work/golden.png" 1400 2400 blue=600 orange=300 red=200 || fail "golden screenshot"

check_dom() {
  page=$1
  shift
  for text in '<svg class="chart memory-chart"' '<svg class="chart bar-chart"' \
    'time since the program started (s)' '>out-of-memory error</text>' 'Live at the peak (' "$@"; do
    grep -qF -- "$text" "$work/$page.dom" || fail "$page page: '$text' is not in the rendered DOM"
  done
}
check_dom h200 'memory (MiB)' '>OOM #1: 20.0 MiB</text>' 'Memory over time, device 0 (NVIDIA H200)' \
  '>keep_weights (/work/main/examples/pytorch/oom_then_cont'
check_dom golden 'memory (GiB)' '>OOM #1: 3.0 GiB</text>' '>epoch 1</text>' \
  '>load_weights (/app/train.py:12)</text>' 'Memory over time, device 0 (Test GPU 16GB)'

if [ "$failed" != 0 ]; then
  for page in h200 golden; do
    echo "--- $browser's messages for the $page page:" >&2
    tail -n 20 "$work/$page.log" >&2
  done
  exit 1
fi
echo "ok: both pages render with their charts"
