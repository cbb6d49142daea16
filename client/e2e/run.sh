#!/usr/bin/env bash
# `make desktop-test`: the Electron app, packaged on the pinned runtime (runtime.sh), driven by
# Playwright (playwright-core's _electron) on a desktop of its own against a server of its own.
#
# The desktop: Xvfb (its own display number), a D-Bus session, openbox (window manager), trayer
# (an XEmbed tray for the app's tray icon) and dunst (the notification daemon that shows the
# native notifications and lets the test click one). The server: `python -m messenger.serve` on a
# free loopback port with a temporary DATA_DIR: SQLite and the in-memory layer by default; with
# DATABASE_URL set, a database of its own on that server (created and dropped here), with REDIS_URL
# set, Redis database 14 of that server. Everything started here is stopped here, by pid.
# Screenshots go to client/docs/ (DESKTOP_SHOTS to change it).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
client="$(dirname "$here")"
root="$(dirname "$client")"
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3

log() { printf '==> %s\n' "$*" >&2; }
# A statement on DATABASE_URL's server (the e2e tests' helper: mysqlclient, root's credentials from the URL).
mysql_admin() { (cd "$root" && "$python" -c 'import os, sys; from tests.e2e.conftest import mysql_admin as m; m(os.environ["DATABASE_URL"], sys.argv[1])' "$1"); }

# The desktop's parts come from Debian; installed when missing and we may (root with apt-get).
need=()
for pair in Xvfb:xvfb dbus-launch:dbus-x11 dbus-send:dbus openbox:openbox trayer:trayer dunst:dunst dunstctl:dunst \
  xdotool:xdotool import:imagemagick xprop:x11-utils unzip:unzip; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
# Electron's own shared libraries (GTK for the tray and dialogs, NSS, libnotify for notifications).
libraries="$(ldconfig -p)"
for lib in libgtk-3.so.0 libnss3.so libnotify.so.4 libasound.so.2 libgbm.so.1 libXss.so.1; do
  grep -qF "$lib" <<<"$libraries" || case "$lib" in
    libgtk-3.so.0) need+=(libgtk-3-0) ;; libnss3.so) need+=(libnss3) ;; libnotify.so.4) need+=(libnotify4) ;;
    libasound.so.2) need+=(libasound2) ;; libgbm.so.1) need+=(libgbm1) ;; libXss.so.1) need+=(libxss1) ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "Installing the desktop's packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
  else
    echo "error: missing ${need[*]} (apt-get install them, or run as root)" >&2
    exit 1
  fi
fi

if [ ! -d "$client/node_modules/playwright-core" ]; then
  log "npm ci (Electron and browser downloads skipped: the runtime is the pinned one)"
  (cd "$client" && ELECTRON_SKIP_BINARY_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2)
fi

log "The pinned Electron runtime and the app laid out on it"
app_dir="$("$here/runtime.sh")"

work="$(mktemp -d "${TMPDIR:-/tmp}/messenger-desktop.XXXXXX")"
pids=()
own_database=
own_redis=
cleanup() {
  local status=$?
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  [ -n "${DBUS_SESSION_BUS_PID:-}" ] && kill "$DBUS_SESSION_BUS_PID" 2>/dev/null || true
  [ -n "$own_database" ] && mysql_admin "DROP DATABASE IF EXISTS \`$own_database\`" || true
  [ -n "$own_redis" ] && "$python" -c 'import sys, redis
r = redis.Redis.from_url(sys.argv[1]); keys = list(r.scan_iter(sys.argv[2] + ":*")); keys and r.delete(*keys)' \
    "$own_redis" "desktop$$" || true
  if [ $status -ne 0 ]; then
    for f in server.log xvfb.log openbox.log trayer.log dunst.log; do
      [ -s "$work/$f" ] && { echo "--- $f (last lines)"; tail -n 40 "$work/$f"; } >&2
    done
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT INT TERM

log "A desktop of its own: Xvfb, D-Bus, openbox, trayer, dunst"
exec 3>"$work/display"
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
exec 3>&-
for _ in $(seq 1 100); do [ -s "$work/display" ] && break; sleep 0.1; done
export DISPLAY=":$(tr -d '\n' <"$work/display")"
eval "$(dbus-launch --sh-syntax)"
export DBUS_SESSION_BUS_ADDRESS DBUS_SESSION_BUS_PID
openbox >"$work/openbox.log" 2>&1 &
pids+=($!)
trayer --edge top --align right --widthtype request --height 28 --SetDockType true --transparent false \
  --tint 0x303030 >"$work/trayer.log" 2>&1 &
pids+=($!)
cat >"$work/dunstrc" <<'EOF'
[global]
    origin = top-right
    offset = 12x48
    width = 360
    height = 120
    font = DejaVu Sans 10
    frame_width = 1
    mouse_left_click = do_action, close_current
    mouse_right_click = close_current
    show_indicators = no
[urgency_normal]
    background = "#ffffff"
    foreground = "#1f2328"
    frame_color = "#2f6feb"
    timeout = 0
[urgency_low]
    timeout = 0
[urgency_critical]
    timeout = 0
EOF
dunst -config "$work/dunstrc" >"$work/dunst.log" 2>&1 &
pids+=($!)
# Wait for this dunst to own the notification service, asking D-Bus itself: a call to the service
# (dunstctl) before then would make D-Bus start another dunst, with the default settings.
for _ in $(seq 1 100); do
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Notifications 2>/dev/null | grep -q 'boolean true' && break
  sleep 0.1
done
kill -0 "${pids[-1]}" || { echo "error: dunst did not start" >&2; exit 1; }

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_env=(env -u DATABASE_URL -u REDIS_URL DATA_DIR="$work/data" DEBUG=false TESTING=false
  SECRET_KEY="desktop-e2e-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" ALLOWED_HOSTS=127.0.0.1,localhost
  DJANGO_SETTINGS_MODULE=messenger.settings PYTHONUNBUFFERED=1)
if [ -n "${DATABASE_URL:-}" ]; then
  read -r own_url own_database < <(cd "$root" && "$python" -c \
    'import sys; from tests.e2e.conftest import e2e_database_url as u; print(*u(sys.argv[1]))' "$DATABASE_URL")
  own_database="${own_database/_e2e_/_desktop_}" own_url="${own_url/_e2e_/_desktop_}"
  mysql_admin "CREATE DATABASE \`$own_database\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  server_env+=(DATABASE_URL="$own_url")
fi
if [ -n "${REDIS_URL:-}" ]; then
  own_redis="$("$python" -c 'import sys, urllib.parse as p; print(p.urlunsplit(p.urlsplit(sys.argv[1])._replace(path="/14")))' "$REDIS_URL")"
  server_env+=(REDIS_URL="$own_redis" CHANNEL_LAYER_PREFIX="desktop$$")
fi
log "A server of its own (database: ${own_database:-SQLite in a temporary DATA_DIR}; channel layer: ${own_redis:-in memory})"
mkdir -p "$work/data"
(cd "$root" && "${server_env[@]}" "$python" manage.py migrate --noinput >"$work/server.log" 2>&1)
(cd "$root" && exec "${server_env[@]}" "$python" -m messenger.serve -b 127.0.0.1 -p "$port" >>"$work/server.log" 2>&1) &
pids+=($!)
server="http://127.0.0.1:$port"
for _ in $(seq 1 240); do
  curl -fsS "$server/healthz" >/dev/null 2>&1 && break
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "error: the server exited" >&2; exit 1; }
  sleep 0.25
done
curl -fsS "$server/healthz" >/dev/null

log "Playwright drives the app ($app_dir)"
shots="${DESKTOP_SHOTS:-$client/docs}"
mkdir -p "$shots"
MESSENGER_APP_DIR="$app_dir" MESSENGER_TEST_SERVER="$server" MESSENGER_TEST_WORK="$work" MESSENGER_SHOTS="$shots" \
  timeout --kill-after=10 300 node --test --test-reporter=spec "$here/desktop.test.mjs"
