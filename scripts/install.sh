#!/usr/bin/env bash
# Installs a built bin/gatehouse, the systemd units and the example configs
# (`make install`; run `make build` first):
#
#   $DESTDIR$PREFIX/bin/gatehouse
#   $DESTDIR$UNITDIR/gatehouse.service, gatehouse-auth.service, gatehouse-registry.service
#   $DESTDIR$PREFIX/share/gatehouse/examples/auth_config.yml, registry-config.yml, compose.yaml
#
# PREFIX defaults to /usr/local and UNITDIR to $PREFIX/lib/systemd/system
# (systemd reads units from /usr/local/lib/systemd/system and
# /usr/lib/systemd/system). The units' ExecStart= names $PREFIX/bin/gatehouse.
# DESTDIR stages the files under another root, for packaging.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
DESTDIR=${DESTDIR:-}

if [ ! -x bin/gatehouse ]; then
  echo "install: bin/gatehouse is missing: run make build first" >&2
  exit 1
fi

install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$UNITDIR" "$DESTDIR$PREFIX/share/gatehouse/examples"
install -m 0755 bin/gatehouse "$DESTDIR$PREFIX/bin/gatehouse"
for unit in packaging/systemd/*.service; do
  dest="$DESTDIR$UNITDIR/$(basename "$unit")"
  sed "s|/usr/local/bin/gatehouse|$PREFIX/bin/gatehouse|g" "$unit" > "$dest"
  chmod 0644 "$dest"
  echo "install: $dest"
done
install -m 0644 docs/examples/auth_config.yml docs/examples/registry-config.yml packaging/compose/compose.yaml \
  "$DESTDIR$PREFIX/share/gatehouse/examples/"
echo "install: $DESTDIR$PREFIX/bin/gatehouse and examples in $DESTDIR$PREFIX/share/gatehouse/examples"
