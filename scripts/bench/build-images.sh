#!/usr/bin/env bash
# Builds the handoff bench images offline (no registry): root filesystems assembled from host
# binaries and their ldd libraries, then `docker import`ed.
#
# Usage: scripts/bench/build-images.sh [all|app-rootfs|check] [--force]
#   all (default): app rootfs tarball, handoff-test-app:{base,v1,v2}, handoff-test-haproxy:latest,
#                  handoff-test-caddy:latest, handoff-test-nginx:latest; each only when missing or
#                  when its inputs changed (hash in a label), then quick checks of what was (re)built.
#   app-rootfs:    only the cached tarball .bench/images/app-rootfs.tar (used by make-app-image.sh)
#   check:         run the quick image checks (app answers on a published port, stops on SIGTERM;
#                  haproxy -vv and -c work; caddy validates a Caddyfile and serves its admin API;
#                  nginx -t, serving and nginx -s reload work)
set -euo pipefail
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

MODE="${1:-all}"
FORCE=0
for a in "$@"; do [ "$a" = "--force" ] && FORCE=1; done
[ "$MODE" = "--force" ] && MODE=all

# Bump when a rootfs recipe below changes (editing this script does not rebuild images by itself,
# so that tests running in parallel are not disturbed by cosmetic edits).
APP_RECIPE=2
HAPROXY_RECIPE=2
CADDY_RECIPE=1
NGINX_RECIPE=1
APP_SRC="$BENCH_REPO/test/bench/app"
BUSYBOX=/bin/busybox
HAPROXY_BIN=/usr/sbin/haproxy
CADDY_BIN=/usr/bin/caddy
NGINX_BIN=/usr/sbin/nginx
NGINX_MIME=/etc/nginx/mime.types
APPLETS="sh ash wget cat sleep ls ps kill nc env echo printf grep sed head tail test [ true false
  hostname id mkdir rm mv cp ln chmod chown date uname tr wc cut sort uniq timeout pidof pgrep pkill
  netstat nslookup ip ifconfig ping top free df du find xargs tee touch stat which vi less more
  nohup usleep seq expr awk basename dirname readlink realpath"

mkdir -p "$BENCH_IMAGES_DIR"

# ---- helpers ----------------------------------------------------------------------------------

# Shared libraries (and the dynamic loader) a binary needs, one absolute path per line.
libs_of() {
  local out
  out="$(ldd "$1" 2>&1)" || { [[ "$out" == *"not a dynamic executable"* ]] && return 0; bench_die "ldd $1: $out"; }
  if grep -q 'not found' <<<"$out"; then bench_die "ldd $1: missing libraries: $out"; fi
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out" | sort -u
}

# Fingerprint of files by name/size/mtime (fast even for the ~100 MB node binary).
stat_sig() { local f; for f in "$@"; do stat -L -c '%n %s %Y' "$f"; done; }

# Skeleton of a merged-/usr root filesystem.
skeleton() {
  local r="$1"
  mkdir -p "$r"/usr/{bin,sbin,lib,lib64,local/bin,local/sbin} "$r"/{etc,tmp,root,proc,sys,dev,run,var/tmp}
  ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
  chmod 1777 "$r/tmp" "$r/var/tmp"
  chmod 0700 "$r/root"
  printf 'hosts: files dns\npasswd: files\ngroup: files\n' >"$r/etc/nsswitch.conf"
}

# Copy binary $1 to $2 (path inside root $3) plus its ldd libraries at their host paths.
install_with_libs() {
  local src="$1" dst="$2" r="$3" lib
  mkdir -p "$r$(dirname "$dst")"
  cp -L "$src" "$r$dst"
  chmod 0755 "$r$dst"
  while IFS= read -r lib; do
    [ -n "$lib" ] || continue
    [ -e "$r$lib" ] && continue
    mkdir -p "$r$(dirname "$lib")"
    cp -L "$lib" "$r$lib"
  done < <(libs_of "$src")
}

install_busybox() {
  local r="$1" a have
  [ -x "$BUSYBOX" ] || bench_die "$BUSYBOX missing (apt-get install busybox-static)"
  cp -L "$BUSYBOX" "$r/usr/bin/busybox"
  chmod 0755 "$r/usr/bin/busybox"
  have=" $("$BUSYBOX" --list | tr '\n' ' ') "
  for a in $APPLETS; do
    [[ "$have" == *" $a "* ]] || continue
    [ -e "$r/usr/bin/$a" ] || ln -s busybox "$r/usr/bin/$a"
  done
}

image_label() { "$DOCKER" image inspect -f "{{ index .Config.Labels \"$BENCH_LABEL\" }}" "$1" 2>/dev/null || true; }
image_id() { "$DOCKER" image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
# Drop an image a rebuild untagged, unless something (a container, another tag) still uses it.
drop_old() { [ -n "$1" ] && [ "$1" != "$(image_id "$2")" ] && "$DOCKER" rmi "$1" >/dev/null 2>&1 || true; }
image_env() { "$DOCKER" image inspect -f '{{ join .Config.Env " " }}' "$1" 2>/dev/null || true; }

# ---- app root filesystem ----------------------------------------------------------------------

NODE_BIN="$(bench_host_node)" || bench_die "no node binary on PATH (outside node_modules); set BENCH_NODE"

app_inputs_hash() {
  {
    echo "app-rootfs recipe $APP_RECIPE"
    stat_sig "$NODE_BIN" "$BUSYBOX"
    stat_sig $(libs_of "$NODE_BIN")
    (cd "$APP_SRC" && sha256sum ./*.js)
    echo "$APPLETS"
  } | sha256sum | cut -c1-32
}

build_app_rootfs() {
  local hash="$1" tmp r
  tmp="$(mktemp -d "$BENCH_IMAGES_DIR/tmp.app.XXXXXX")"
  r="$tmp/root"
  mkdir "$r"
  skeleton "$r"
  install_with_libs "$NODE_BIN" /usr/local/bin/node "$r"
  ln -s ../local/bin/node "$r/usr/bin/node"
  install_busybox "$r"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  mkdir -p "$r/app"
  cp "$APP_SRC"/*.js "$r/app/"
  printf '{ "name": "handoff-test-app", "private": true, "type": "module" }\n' >"$r/app/package.json"
  chmod -R a+rX "$r/app" "$r/usr" "$r/etc"
  tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$tmp/rootfs.tar" .
  mv -f "$tmp/rootfs.tar" "$BENCH_APP_TAR"
  printf '%s\n' "$hash" >"$BENCH_APP_INPUTS"
  rm -rf "$tmp"
  bench_log "app rootfs tarball built ($(du -m "$BENCH_APP_TAR" | cut -f1) MB, node $("$NODE_BIN" -v))"
}

ensure_app_rootfs() {
  local hash
  hash="$(app_inputs_hash)"
  if [ "$FORCE" = 1 ] || [ ! -s "$BENCH_APP_TAR" ] || [ "$(cat "$BENCH_APP_INPUTS" 2>/dev/null)" != "$hash" ]; then
    build_app_rootfs "$hash"
  fi
  APP_HASH="$hash"
}

# ---- images -----------------------------------------------------------------------------------

BUILT=()

ensure_app_images() {
  local tag ver want_env
  local old
  if [ "$FORCE" = 1 ] || [ "$(image_label "$BENCH_APP_REPO:base")" != "$APP_HASH" ]; then
    old="$(image_id "$BENCH_APP_REPO:base")"
    "$DOCKER" import \
      -c 'CMD ["node","/app/server.js"]' \
      -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
      -c 'EXPOSE 8080' \
      -c 'WORKDIR /app' \
      -c "LABEL $BENCH_LABEL=$APP_HASH" \
      "$BENCH_APP_TAR" "$BENCH_APP_REPO:base" >/dev/null
    drop_old "$old" "$BENCH_APP_REPO:base"
    BUILT+=("$BENCH_APP_REPO:base")
  fi
  for ver in v1 v2; do
    tag="$BENCH_APP_REPO:$ver"
    want_env="APP_VERSION=$ver"
    if [ "$FORCE" = 1 ] || [ "$(image_label "$tag")" != "$APP_HASH" ] || [[ " $(image_env "$tag") " != *" $want_env "* ]]; then
      old="$(image_id "$tag")"
      bash "$BENCH_SCRIPT_DIR/make-app-image.sh" "$tag" "$ver" >/dev/null
      drop_old "$old" "$tag"
      BUILT+=("$tag")
    fi
  done
}

haproxy_inputs_hash() {
  {
    echo "haproxy recipe $HAPROXY_RECIPE $APPLETS"
    stat_sig "$HAPROXY_BIN" "$BUSYBOX"
    stat_sig $(libs_of "$HAPROXY_BIN")
    if command -v socat >/dev/null; then stat_sig "$(command -v socat)"; fi
  } | sha256sum | cut -c1-32
}

ensure_haproxy_image() {
  local hash tmp r socat old
  [ -x "$HAPROXY_BIN" ] || bench_die "$HAPROXY_BIN missing (apt-get install haproxy)"
  hash="$(haproxy_inputs_hash)"
  if [ "$FORCE" != 1 ] && [ "$(image_label "$BENCH_HAPROXY_IMAGE")" = "$hash" ]; then return 0; fi
  tmp="$(mktemp -d "$BENCH_IMAGES_DIR/tmp.haproxy.XXXXXX")"
  r="$tmp/root"
  mkdir "$r"
  skeleton "$r"
  install_with_libs "$HAPROXY_BIN" /usr/sbin/haproxy "$r"
  socat="$(command -v socat || true)"
  if [ -n "$socat" ]; then install_with_libs "$socat" /usr/bin/socat "$r"; fi
  install_busybox "$r"
  printf 'root:x:0:0:root:/root:/bin/sh\nhaproxy:x:99:99:haproxy:/var/lib/haproxy:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nhaproxy:x:99:\nnogroup:x:65534:\n' >"$r/etc/group"
  mkdir -p "$r/var/lib/haproxy" "$r/run/haproxy" "$r/usr/local/etc/haproxy"
  cat >"$r/usr/local/etc/haproxy/haproxy.cfg" <<'EOF'
# Placeholder: mount a directory with your own haproxy.cfg on /usr/local/etc/haproxy.
global
    log stdout format raw local0
    stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend placeholder
    bind :8404
    http-request return status 200 content-type text/plain string "handoff-test-haproxy placeholder\n"
EOF
  chown -R 99:99 "$r/var/lib/haproxy" "$r/run/haproxy"
  chmod -R a+rX "$r/usr" "$r/etc"
  tar --numeric-owner -C "$r" -cf "$tmp/rootfs.tar" .
  old="$(image_id "$BENCH_HAPROXY_IMAGE")"
  "$DOCKER" import \
    -c 'CMD ["haproxy","-W","-db","-f","/usr/local/etc/haproxy/haproxy.cfg"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'WORKDIR /var/lib/haproxy' \
    -c "LABEL $BENCH_LABEL=$hash" \
    "$tmp/rootfs.tar" "$BENCH_HAPROXY_IMAGE" >/dev/null
  drop_old "$old" "$BENCH_HAPROXY_IMAGE"
  rm -rf "$tmp"
  BUILT+=("$BENCH_HAPROXY_IMAGE")
}

caddy_inputs_hash() {
  {
    echo "caddy recipe $CADDY_RECIPE $APPLETS"
    stat_sig "$CADDY_BIN" "$BUSYBOX"
    stat_sig $(libs_of "$CADDY_BIN")
  } | sha256sum | cut -c1-32
}

# A Caddy root filesystem in $2 around the binary $1 (with its ldd libraries), imported as $3.
# Config: mount a *directory* on /etc/caddy holding the Caddyfile (a rename-replaced single-file
# mount keeps the old inode). Admin API on localhost:2019 inside the container unless the
# Caddyfile's `admin` global option says otherwise (e.g. a unix socket in a mounted directory).
import_caddy_image() {
  local bin="$1" tmp="$2" image="$3" hash="$4" r="$2/root" old
  mkdir "$r"
  skeleton "$r"
  install_with_libs "$bin" /usr/bin/caddy "$r"
  install_busybox "$r"
  printf 'root:x:0:0:root:/root:/bin/sh\ncaddy:x:101:101:caddy:/var/lib/caddy:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\ncaddy:x:101:\nnogroup:x:65534:\n' >"$r/etc/group"
  mkdir -p "$r/etc/caddy" "$r/config" "$r/data" "$r/srv"
  printf '%s\n' '# Placeholder: mount a directory with your own Caddyfile on /etc/caddy.' \
    ':8080 {' '	respond "handoff-test-caddy placeholder" 200' '}' >"$r/etc/caddy/Caddyfile"
  chmod -R a+rX "$r/usr" "$r/etc"
  tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$tmp/rootfs.tar" .
  old="$(image_id "$image")"
  "$DOCKER" import \
    -c 'CMD ["caddy","run","--config","/etc/caddy/Caddyfile","--adapter","caddyfile"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV XDG_CONFIG_HOME=/config' \
    -c 'ENV XDG_DATA_HOME=/data' \
    -c 'EXPOSE 8080' \
    -c 'WORKDIR /srv' \
    -c "LABEL $BENCH_LABEL=$hash" \
    "$tmp/rootfs.tar" "$image" >/dev/null
  drop_old "$old" "$image"
  rm -rf "$tmp"
  BUILT+=("$image")
}

# Debian's caddy (2.6.2 in bookworm; Debian builds it with cgo: libc and libzstd come along).
ensure_caddy_image() {
  local hash
  [ -x "$CADDY_BIN" ] || bench_die "$CADDY_BIN missing (apt-get install caddy)"
  hash="$(caddy_inputs_hash)"
  if [ "$FORCE" != 1 ] && [ "$(image_label "$BENCH_CADDY_IMAGE")" = "$hash" ]; then return 0; fi
  import_caddy_image "$CADDY_BIN" "$(mktemp -d "$BENCH_IMAGES_DIR/tmp.caddy.XXXXXX")" "$BENCH_CADDY_IMAGE" "$hash"
}

nginx_inputs_hash() {
  {
    echo "nginx recipe $NGINX_RECIPE $APPLETS"
    stat_sig "$NGINX_BIN" "$BUSYBOX" "$NGINX_MIME"
    stat_sig $(libs_of "$NGINX_BIN")
  } | sha256sum | cut -c1-32
}

# An nginx root filesystem in $1/root (nginx and its libraries already there, mime.types at $2),
# imported as $3. Compiled-in paths: /etc/nginx/nginx.conf, /run/nginx.pid, temp dirs
# /var/lib/nginx/*, access log /var/log/nginx/access.log (here a link to stdout), error log stderr.
# Config: mount a directory on /etc/nginx, or only a subdirectory (e.g. /etc/nginx/handoff for
# rendered upstream files). The master runs as PID 1 in the foreground; `docker exec <c> nginx -s
# reload` signals it through /run/nginx.pid.
import_nginx_image() {
  local tmp="$1" mime="$2" image="$3" hash="$4" r="$1/root" old d
  install_busybox "$r"
  printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' >"$r/etc/group"
  for d in body fastcgi proxy scgi uwsgi; do mkdir -p "$r/var/lib/nginx/$d"; done
  mkdir -p "$r/etc/nginx/conf.d" "$r/var/log/nginx" "$r/var/lock" "$r/var/www/html"
  cp "$mime" "$r/etc/nginx/mime.types"
  ln -sfn /dev/stdout "$r/var/log/nginx/access.log"
  ln -sfn /dev/stderr "$r/var/log/nginx/error.log"
  printf '%s\n' \
    '# Placeholder: mount a directory with your own nginx.conf on /etc/nginx.' \
    'user www-data;' \
    'worker_processes 1;' \
    'pid /run/nginx.pid;' \
    'error_log stderr notice;' \
    'events { worker_connections 512; }' \
    'http {' \
    '    include mime.types;' \
    '    access_log off;' \
    '    server {' \
    '        listen 8080;' \
    '        location / { return 200 "handoff-test-nginx placeholder\n"; }' \
    '    }' \
    '    include conf.d/*.conf;' \
    '}' >"$r/etc/nginx/nginx.conf"
  chown -R 33:33 "$r/var/lib/nginx"
  chmod -R a+rX "$r/usr" "$r/etc"
  tar --numeric-owner -C "$r" -cf "$tmp/rootfs.tar" .
  old="$(image_id "$image")"
  "$DOCKER" import \
    -c 'CMD ["nginx","-g","daemon off;"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'EXPOSE 8080' \
    -c "LABEL $BENCH_LABEL=$hash" \
    "$tmp/rootfs.tar" "$image" >/dev/null
  drop_old "$old" "$image"
  rm -rf "$tmp"
  BUILT+=("$image")
}

# Debian's nginx (1.22 in bookworm): the host's binary and its ldd libraries.
ensure_nginx_image() {
  local hash tmp
  [ -x "$NGINX_BIN" ] || bench_die "$NGINX_BIN missing (apt-get install nginx)"
  [ -f "$NGINX_MIME" ] || bench_die "$NGINX_MIME missing (apt-get install nginx-common)"
  hash="$(nginx_inputs_hash)"
  if [ "$FORCE" != 1 ] && [ "$(image_label "$BENCH_NGINX_IMAGE")" = "$hash" ]; then return 0; fi
  tmp="$(mktemp -d "$BENCH_IMAGES_DIR/tmp.nginx.XXXXXX")"
  mkdir "$tmp/root"
  skeleton "$tmp/root"
  install_with_libs "$NGINX_BIN" /usr/sbin/nginx "$tmp/root"
  import_nginx_image "$tmp" "$NGINX_MIME" "$BENCH_NGINX_IMAGE" "$hash"
}

# sid's nginx and Caddy (see BENCH_*_NEW_IMAGE): nginx needs sid's own libc, OpenSSL and PCRE2, so
# its image holds those packages unpacked whole; Caddy needs only a libc bookworm's satisfies.
SID_NGINX_DEBS=(nginx nginx-common libc6 libgcc-s1 libcrypt1 libpcre2-8-0 libssl3t64 zlib1g libzstd1)
ensure_new_proxy_images() {
  local debs nginx_hash caddy_hash tmp d
  bench_sid_update
  nginx_hash="$( (echo "nginx-sid recipe $NGINX_RECIPE $APPLETS"; bench_sid_versions "${SID_NGINX_DEBS[@]}") | sha256sum | cut -c1-32)"
  caddy_hash="$( (echo "caddy-sid recipe $CADDY_RECIPE $APPLETS"; bench_sid_versions caddy) | sha256sum | cut -c1-32)"
  debs="$BENCH_IMAGES_DIR/sid-debs"
  if [ "$FORCE" = 1 ] || [ "$(image_label "$BENCH_NGINX_NEW_IMAGE")" != "$nginx_hash" ]; then
    rm -rf "$debs"
    bench_sid_download "$debs" "${SID_NGINX_DEBS[@]}"
    tmp="$(mktemp -d "$BENCH_IMAGES_DIR/tmp.nginx-sid.XXXXXX")"
    mkdir "$tmp/root" "$tmp/x"
    skeleton "$tmp/root"
    for d in "${SID_NGINX_DEBS[@]}"; do dpkg -x "$debs/${d}_"*.deb "$tmp/x"; done
    rm -rf "$tmp/x/usr/share/doc" "$tmp/x/usr/share/man" "$tmp/x/usr/share/lintian"
    cp -a "$tmp/x/usr/." "$tmp/root/usr/"
    [ -x "$tmp/root/usr/sbin/nginx" ] || bench_die "sid's nginx package has no /usr/sbin/nginx"
    import_nginx_image "$tmp" "$tmp/x/etc/nginx/mime.types" "$BENCH_NGINX_NEW_IMAGE" "$nginx_hash"
  fi
  if [ "$FORCE" = 1 ] || [ "$(image_label "$BENCH_CADDY_NEW_IMAGE")" != "$caddy_hash" ]; then
    rm -rf "$debs"
    bench_sid_download "$debs" caddy
    tmp="$(mktemp -d "$BENCH_IMAGES_DIR/tmp.caddy-sid.XXXXXX")"
    dpkg -x "$debs"/caddy_*.deb "$tmp/x"
    import_caddy_image "$tmp/x/usr/bin/caddy" "$tmp" "$BENCH_CADDY_NEW_IMAGE" "$caddy_hash"
  fi
  rm -rf "$debs"
}

# ---- checks -----------------------------------------------------------------------------------

check_haproxy() {
  local v
  v="$("$DOCKER" run --rm "$BENCH_HAPROXY_IMAGE" haproxy -vv 2>&1)" || bench_die "haproxy -vv failed in image: $v"
  "$DOCKER" run --rm "$BENCH_HAPROXY_IMAGE" sh -c '
    cat >/tmp/t.cfg <<EOF
global
    stats socket /run/haproxy/admin.sock mode 660 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend f
    bind :8080
    default_backend b
backend b
    server s1 127.0.0.1:8081 check
EOF
    haproxy -c -f /tmp/t.cfg' >/dev/null 2>&1 || bench_die "haproxy -c failed in image"
  bench_log "check haproxy image: ok ($(head -1 <<<"$v"))"
}

check_caddy() {
  local BENCH_CADDY_IMAGE="${1:-$BENCH_CADDY_IMAGE}" name="handoff-bench-check-caddy-$$" v out i
  trap '"$DOCKER" rm -f "$name" >/dev/null 2>&1 || true' RETURN
  v="$("$DOCKER" run --rm "$BENCH_CADDY_IMAGE" caddy version 2>&1)" || bench_die "caddy version failed in image: $v"
  "$DOCKER" run --rm "$BENCH_CADDY_IMAGE" sh -c '
    printf ":8080 {\n\treverse_proxy 127.0.0.1:8081 127.0.0.1:8082\n}\n" >/tmp/Caddyfile
    caddy validate --config /tmp/Caddyfile --adapter caddyfile' >/dev/null 2>&1 || bench_die "caddy validate failed in image"
  "$DOCKER" run -d --name "$name" "$BENCH_CADDY_IMAGE" >/dev/null
  for i in $(seq 1 50); do
    out="$("$DOCKER" exec "$name" wget -qO- http://127.0.0.1:8080/ 2>/dev/null)" && break
    sleep 0.2
  done
  [[ "$out" == *placeholder* ]] || bench_die "caddy image check: placeholder site did not answer ('$out')"
  "$DOCKER" exec "$name" wget -qO- http://localhost:2019/config/ | grep -q '"apps"' \
    || bench_die "caddy image check: admin API /config/ did not answer"
  bench_log "check caddy image: ok ($v)"
}

check_nginx() {
  local BENCH_NGINX_IMAGE="${1:-$BENCH_NGINX_IMAGE}" name="handoff-bench-check-nginx-$$" v out i
  trap '"$DOCKER" rm -f "$name" >/dev/null 2>&1 || true' RETURN
  v="$("$DOCKER" run --rm "$BENCH_NGINX_IMAGE" nginx -v 2>&1)" || bench_die "nginx -v failed in image: $v"
  "$DOCKER" run --rm "$BENCH_NGINX_IMAGE" nginx -t >/dev/null 2>&1 || bench_die "nginx -t failed in image"
  "$DOCKER" run -d --name "$name" "$BENCH_NGINX_IMAGE" >/dev/null
  for i in $(seq 1 50); do
    out="$("$DOCKER" exec "$name" wget -qO- http://127.0.0.1:8080/ 2>/dev/null)" && break
    sleep 0.2
  done
  [[ "$out" == *placeholder* ]] || bench_die "nginx image check: placeholder site did not answer ('$out')"
  "$DOCKER" exec "$name" nginx -s reload 2>/dev/null || bench_die "nginx image check: nginx -s reload failed"
  bench_log "check nginx image: ok ($v)"
}

check_app() {
  local name="handoff-bench-check-$$" port body i t0 t1 code
  trap '"$DOCKER" rm -f "$name" >/dev/null 2>&1 || true' RETURN
  "$DOCKER" run -d --name "$name" -p 127.0.0.1::8080 "$BENCH_APP_REPO:v1" >/dev/null
  port="$("$DOCKER" port "$name" 8080/tcp | head -1 | sed 's/.*://')"
  for i in $(seq 1 50); do
    body="$(curl -fsS --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null)" && break
    sleep 0.2
  done
  [[ "$body" == "version=v1 host="* ]] || bench_die "app image check: unexpected body '$body' on port $port"
  "$DOCKER" exec "$name" wget -qO- http://127.0.0.1:8080/health | grep -qx ok || bench_die "app image check: wget /health inside the container failed"
  t0=$(date +%s%N)
  "$DOCKER" stop -t 10 "$name" >/dev/null
  t1=$(date +%s%N)
  code="$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$name")"
  [ "$code" = 0 ] || [ "$code" = 143 ] || bench_die "app image check: exit code $code after docker stop"
  (( (t1 - t0) / 1000000 < 5000 )) || bench_die "app image check: docker stop took $(( (t1 - t0) / 1000000 )) ms"
  bench_log "check app image: ok (port $port, '$body', stop in $(( (t1 - t0) / 1000000 )) ms, exit $code)"
}

# ---- main -------------------------------------------------------------------------------------

case "$MODE" in
  app-rootfs)
    ensure_app_rootfs
    ;;
  all)
    DOCKER="$(bench_docker_client)" || bench_die "no docker client can reach the daemon"
    ensure_app_rootfs
    ensure_app_images
    ensure_haproxy_image
    ensure_caddy_image
    ensure_nginx_image
    ensure_new_proxy_images
    if [ ${#BUILT[@]} -gt 0 ]; then
      bench_log "built: ${BUILT[*]}"
      check_haproxy
      check_caddy
      check_caddy "$BENCH_CADDY_NEW_IMAGE"
      check_nginx
      check_nginx "$BENCH_NGINX_NEW_IMAGE"
      check_app
    else
      bench_log "images up to date"
    fi
    ;;
  check)
    DOCKER="$(bench_docker_client)" || bench_die "no docker client can reach the daemon"
    check_haproxy
    check_caddy
    check_caddy "$BENCH_CADDY_NEW_IMAGE"
    check_nginx
    check_nginx "$BENCH_NGINX_NEW_IMAGE"
    check_app
    ;;
  *) bench_die "usage: $0 [all|app-rootfs|check] [--force]" ;;
esac
