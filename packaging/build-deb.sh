#!/usr/bin/env bash
# Builds confab's Debian package: target/debian/confab_<version>_<arch>.deb
#   packaging/build-deb.sh                      # builds the release binary, then the package
#   packaging/build-deb.sh --binary PATH        # packages an already built binary (CI: the test build)
# Contents: /usr/bin/confab, the systemd unit (unprivileged user confab, CAP_NET_BIND_SERVICE
# only, sandboxed), /etc/confab/confab.toml (a conffile, loopback-only defaults),
# /var/lib/confab (the state directory), the docs in /usr/share/doc/confab.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    *) echo "usage: $0 [--binary PATH]" >&2; exit 2 ;;
  esac
done
target="${CARGO_TARGET_DIR:-target}"
if [ -z "$binary" ]; then
  cargo build --release --locked --bin confab
  binary="$target/release/confab"
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$binary" "$stage/usr/bin/confab"
strip --strip-debug "$stage/usr/bin/confab" 2>/dev/null || true
install -D -m 0644 packaging/debian/confab.service "$stage/lib/systemd/system/confab.service"
install -D -m 0640 packaging/debian/confab.toml "$stage/etc/confab/confab.toml"
install -d -m 0750 "$stage/var/lib/confab"
install -d "$stage/usr/share/doc/confab"
install -m 0644 README.md docs/*.md "$stage/usr/share/doc/confab/"
install -d "$stage/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
echo "/etc/confab/confab.toml" > "$stage/DEBIAN/conffiles"
size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: confab
Version: $version
Architecture: $arch
Maintainer: confab developers <confab@example.test>
Section: net
Priority: optional
Installed-Size: $size
Depends: libc6, libopus0, adduser
Recommends: espeak-ng
Suggests: postgresql
Homepage: https://example.test/confab
Description: unified-communications server (Lync / Skype for Business replacement)
 confab speaks standard SIP (UDP, TCP, TLS, WebSocket): registrar, proxy, presence
 with Lync's privacy relationships, IM with offline delivery, meetings with a lobby,
 an audio MCU and dial-in, enterprise voice routing, the Edge (federation), a
 Lync-cmdlet shell with RBAC and audit, REST, and the web site (meeting pages,
 dial-in page, Control Panel). Runs as the unprivileged user confab.
CONTROL
mkdir -p "$target/debian"
out="$target/debian/confab_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$out" >/dev/null
echo "$out"
