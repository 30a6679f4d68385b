#!/usr/bin/env bash
# The .deb as an end user gets it: builds the bundle (cargo reuses a fresh build),
# installs it with dpkg, checks the desktop entry and icons and the `switchyard`
# command beside the app, launches the installed /usr/bin/switchyard-desktop in a real window under Xvfb (its System tab must show this
# machine; screenshot in target/e2e/screenshots/installed.png), then removes the
# package and checks that its files are gone. Needs root (dpkg); skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/install/deb.sh: skipped: installing a .deb needs root (CI runs as root)"
  exit 0
fi

package=switchyard
app=/usr/bin/switchyard-desktop
cli=/usr/bin/switchyard
desktop=/usr/share/applications/Switchyard.desktop
icon=/usr/share/icons/hicolor/128x128/apps/switchyard-desktop.png
fail() { echo "tests/install/deb.sh: $*" >&2; exit 1; }

if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
  fail "$package is already installed on this machine; remove it first (dpkg -r $package)"
fi

npm run bundle
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
version=$(node -p 'require("./tauri.conf.json").version')
deb=$(ls "$target_dir"/release/bundle/deb/Switchyard_"${version}"_*.deb)
rpm=$(ls "$target_dir"/release/bundle/rpm/Switchyard-"${version}"-*.rpm)
printf 'bundle sizes: deb %s bytes, rpm %s bytes, binary %s bytes\n' \
  "$(stat -c %s "$deb")" "$(stat -c %s "$rpm")" "$(stat -c %s "$target_dir/release/switchyard-desktop")"
dpkg-deb --field "$deb" Package Version Depends Section

# Always leave the machine as it was, also when a check fails.
cleanup() { dpkg -r "$package" >/dev/null 2>&1 || true; }
trap cleanup EXIT

if ! dpkg -i "$deb"; then
  # A declared dependency this machine lacks: let apt bring it, as `apt install ./x.deb` would.
  DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq
fi
[ -x "$app" ] || fail "$app was not installed"
[ -f "$desktop" ] || fail "no desktop entry at $desktop"
[ -f "$icon" ] || fail "no icon at $icon"
grep -qx 'Exec=switchyard-desktop' "$desktop" || fail "the desktop entry does not start switchyard-desktop: $(cat "$desktop")"
grep -qx 'Icon=switchyard-desktop' "$desktop" || fail "the desktop entry names no icon"
grep -q '^Categories=Utility;' "$desktop" || fail "the desktop entry has no category"
[ -x "$cli" ] || fail "the switchyard command was not installed at $cli"
# The command runs on the installed system: no window, so no Tauri or GTK needed.
"$cli" --version | grep -q '^switchyard ' || fail "$cli --version: $("$cli" --version 2>&1)"
if command -v desktop-file-validate >/dev/null 2>&1; then desktop-file-validate "$desktop"; fi
installed_files=$(dpkg -L "$package")

mkdir -p target/e2e/screenshots
export SWITCHYARD_E2E_APP="$app"
export SWITCHYARD_E2E_SCREENSHOTS="$PWD/target/e2e/screenshots"
dbus-run-session -- xvfb-run --auto-servernum --server-args="-screen 0 1280x900x24" \
  node --test --test-concurrency=1 --test-timeout=120000 tests/install/

dpkg -r "$package"
trap - EXIT
dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" && fail "$package is still installed"
while IFS= read -r path; do
  # Shared folders (/usr, /usr/share/icons/...) stay; the package's own files go.
  if [ -f "$path" ] || [ -L "$path" ]; then fail "$path is left after dpkg -r"; fi
done <<< "$installed_files"
echo "tests/install/deb.sh: the .deb installed, ran and uninstalled cleanly"
