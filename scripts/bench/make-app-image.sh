#!/usr/bin/env bash
# Usage: scripts/bench/make-app-image.sh TAG VERSION
#   Imports the bench app root filesystem (cached in .bench/images/app-rootfs.tar by
#   build-images.sh) as image TAG with ENV APP_VERSION=VERSION baked in. Every call yields a new,
#   distinct image ID (the config carries the creation time), so tests can "re-push" a tag with a
#   different image. Prints the new image ID (sha256:...) on stdout and nothing else.
# Example: scripts/bench/make-app-image.sh handoff-test-app:v3 v3
set -euo pipefail
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

[ $# -eq 2 ] || bench_die "usage: $0 TAG VERSION"
TAG="$1"
VERSION="$2"
[[ "$VERSION" =~ ^[A-Za-z0-9._+-]+$ ]] || bench_die "VERSION must match [A-Za-z0-9._+-]+ (got '$VERSION')"
[[ "$TAG" =~ ^[a-z0-9][a-z0-9._/:-]*$ ]] || bench_die "bad image TAG '$TAG'"

if [ ! -s "$BENCH_APP_TAR" ] || [ ! -s "$BENCH_APP_INPUTS" ]; then
  bench_log "app rootfs tarball missing: building it"
  bash "$BENCH_SCRIPT_DIR/build-images.sh" app-rootfs >&2
fi

DOCKER="$(bench_docker_client)" || bench_die "no docker client can reach the daemon (run scripts/bench/setup.sh as root)"
"$DOCKER" import \
  -c 'CMD ["node","/app/server.js"]' \
  -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  -c "ENV APP_VERSION=$VERSION" \
  -c 'EXPOSE 8080' \
  -c 'WORKDIR /app' \
  -c "LABEL $BENCH_LABEL=$(cat "$BENCH_APP_INPUTS")" \
  -c "LABEL org.handoff.bench.app-version=$VERSION" \
  "$BENCH_APP_TAR" "$TAG"
