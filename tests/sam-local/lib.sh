# Sourced by tests/sam-local/*.sh: a Docker daemon of the project's own and the images
# `sam local` needs, on a machine with no image registry.
#
#   sam_local_up     checks root and overlayfs, installs what is missing (Debian docker.io,
#                    qemu-user-static, debootstrap), registers qemu-aarch64 with binfmt_misc,
#                    starts dockerd (everything under target/sam-local/), loads or builds
#                    public.ecr.aws/lambda/provided:al2023-arm64 and …:al2023-rapid-arm64 (image.py),
#                    and writes the local template target/sam-local/template.yaml.
#   sam_local_down   stops that dockerd by its pid and undoes the binfmt registration.
#
# The base image is a Debian bookworm minbase rootfs (glibc 2.36; AL2023 has 2.34), built once
# with debootstrap (and ca-certificates, as Lambda's images have) and kept as
# target/sam-local/rootfs-bookworm-arm64-ca.tar: what it checks is
# the handler and its packaging (the arm64 bootstrap, provided.al2023's entry point, the
# read-only /var/task, the environment SAM passes), not the OS.

SL_ROOT=${SL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# Its physical path: runc refuses a container rootfs whose path goes through a symlink (a
# target/ linked elsewhere).
SL_DIR=$(mkdir -p "$SL_ROOT/target/sam-local" && cd "$SL_ROOT/target/sam-local" && pwd -P)
export DOCKER_HOST="unix://$SL_DIR/docker.sock"
SL_BASE=public.ecr.aws/lambda/provided:al2023-arm64
SL_RAPID=public.ecr.aws/lambda/provided:al2023-rapid-arm64
SL_ROOTFS_TAR="$SL_DIR/rootfs-bookworm-arm64-ca.tar"
SL_BINFMT=/proc/sys/fs/binfmt_misc
sl_dockerd_pid=""
sl_binfmt_ours=""

sl_say() { echo "sam-local: $*" >&2; }
sl_die() { echo "sam-local: $*" >&2; exit 2; }

# One clear line for what this machine lacks.
sl_prerequisites() {
  [ "$(id -u)" = 0 ] || sl_die "needs root (it runs its own dockerd and registers qemu-aarch64 with binfmt_misc); run it as root, or use make watch / make invoke"
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || sl_die "needs overlayfs in the kernel (dockerd --storage-driver=overlay2); this kernel has none"
  local fs
  fs=$(stat -f -c %T "$SL_ROOT/target/" 2>/dev/null || echo unknown)
  case "$fs" in
    overlayfs | overlay) sl_die "target/ is on overlayfs, where dockerd's overlay2 cannot keep its data; put target/ on another file system" ;;
  esac
  grep -qw binfmt_misc /proc/filesystems || sl_die "needs binfmt_misc in the kernel (arm64 functions run under qemu-aarch64)"
  [ -d /sys/fs/cgroup ] || sl_die "needs cgroups (/sys/fs/cgroup) for containers"
}

sl_install() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v docker >/dev/null || need+=(docker.io)
  [ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  if [ ${#need[@]} -gt 0 ]; then
    sl_say "installing ${need[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } ||
      sl_die "apt-get install ${need[*]} failed"
  fi
}

# qemu-aarch64 for arm64 binaries (flag F: the interpreter is opened now, so it works inside
# containers and chroots). Undone by sl_binfmt_down only when this run registered it.
sl_binfmt_up() {
  [ -e "$SL_BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$SL_BINFMT" ||
    sl_die "cannot mount binfmt_misc on $SL_BINFMT"
  if [ ! -e "$SL_BINFMT/qemu-aarch64" ]; then
    local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -f "$conf" ] || sl_die "$conf is missing (Debian qemu-user-static)"
    grep -v '^#' "$conf" >"$SL_BINFMT/register" || sl_die "cannot register qemu-aarch64 with binfmt_misc"
    sl_binfmt_ours=1
  fi
}

sl_binfmt_down() {
  if [ -n "$sl_binfmt_ours" ] && [ -e "$SL_BINFMT/qemu-aarch64" ]; then
    echo -1 >"$SL_BINFMT/qemu-aarch64" || true
  fi
  sl_binfmt_ours=""
}

# dockerd with its data root, exec root, socket and pid file under target/sam-local/.
sl_dockerd_up() {
  mkdir -p "$SL_DIR"
  local pidfile="$SL_DIR/docker.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null &&
    docker version >/dev/null 2>&1; then
    sl_say "dockerd already running (pid $(cat "$pidfile"))"
    return 0
  fi
  rm -f "$pidfile" "$SL_DIR/docker.sock"
  dockerd --data-root "$SL_DIR/docker" --exec-root "$SL_DIR/run" -H "$DOCKER_HOST" \
    --pidfile "$pidfile" --storage-driver=overlay2 --iptables=false --ip-masq=false \
    >"$SL_DIR/dockerd.log" 2>&1 &
  sl_dockerd_pid=$!
  local i
  for i in $(seq 1 600); do
    docker version >/dev/null 2>&1 && return 0
    kill -0 "$sl_dockerd_pid" 2>/dev/null || {
      tail -n 5 "$SL_DIR/dockerd.log" >&2
      sl_dockerd_pid=""
      sl_die "dockerd exited during start-up (log: target/sam-local/dockerd.log)"
    }
    sleep 0.1
  done
  sl_die "dockerd did not answer on $DOCKER_HOST within 60 s (log: target/sam-local/dockerd.log)"
}

sl_dockerd_down() {
  [ -n "$sl_dockerd_pid" ] || return 0
  # Containers SAM left behind (an interrupted invoke) go first.
  docker ps -q 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
  kill "$sl_dockerd_pid" 2>/dev/null || true
  wait "$sl_dockerd_pid" 2>/dev/null || true
  sl_dockerd_pid=""
}

# The address of docker's default bridge on this host: what host-gateway (host.docker.internal)
# resolves to in the containers, so the services they reach listen there.
sl_gateway() {
  local bridge address
  bridge=$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null)
  address=$(ip -4 -o addr show dev "${bridge:-docker0}" 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }')
  [ -n "$address" ] || sl_die "docker's bridge ${bridge:-docker0} has no IPv4 address"
  echo "$address"
}

# Debian's mirror as apt is configured here (none named in the repository).
sl_mirror() {
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2 }'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" { print ($2 ~ /^\[/ ? $3 : $2) }'
  } | grep -E '/debian/?$' | head -n 1
}

# The rootfs tarball: built once (debootstrap runs its second stage under qemu), then reused.
sl_rootfs() {
  [ -s "$SL_ROOTFS_TAR" ] && return 0
  sl_say "building the arm64 bookworm rootfs with debootstrap (under qemu; once, then cached in target/sam-local/)"
  local root="$SL_DIR/rootfs"
  rm -rf "$root"
  # shellcheck disable=SC2046
  debootstrap --variant=minbase --include=ca-certificates --arch=arm64 bookworm "$root" $(sl_mirror) >"$SL_DIR/debootstrap.log" 2>&1 || {
    tail -n 5 "$SL_DIR/debootstrap.log" >&2
    sl_die "debootstrap failed (log: target/sam-local/debootstrap.log)"
  }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$SL_ROOTFS_TAR.tmp" . && mv "$SL_ROOTFS_TAR.tmp" "$SL_ROOTFS_TAR"
  rm -rf "$root"
}

# public.ecr.aws/lambda/provided:al2023-arm64 and …:al2023-rapid-arm64, loaded from an archive
# tests/sam-local/image.py writes (arm64 in their config, which `docker import` cannot say).
# SAM would build the rapid image itself with the arm64 emulator, which then runs under qemu
# too and starts too slowly for SAM (invokes answered "No response from invoke container");
# with the x86_64 emulator SAM ships, only the function runs under qemu. SAM uses an existing
# rapid image as it is when the pull is skipped.
sl_images() {
  local samcli rie version label
  samcli=$("$SL_ROOT/.venv/bin/python" -c 'import os, samcli; print(os.path.dirname(samcli.__file__))')
  version=$("$SL_ROOT/.venv/bin/python" -c 'import samcli; print(samcli.__version__)')
  rie="$samcli/local/rapid/aws-lambda-rie-x86_64"
  [ -f "$rie" ] || sl_die "$rie is missing (aws-sam-cli in .venv)"
  label="x86_64-$version ${SL_ROOTFS_TAR##*/}"
  if [ "$(docker image inspect -f '{{index .Config.Labels "devhive.rie"}}' "$SL_RAPID" 2>/dev/null)" = "$label" ] &&
    docker image inspect "$SL_BASE" >/dev/null 2>&1; then
    return 0
  fi
  sl_rootfs
  python3 "$SL_ROOT/tests/sam-local/image.py" "$SL_ROOTFS_TAR" "$rie" "$label" | docker load -q >/dev/null ||
    sl_die "docker load of the images failed"
  [ "$(docker image inspect -f '{{.Architecture}}' "$SL_RAPID" 2>/dev/null)" = arm64 ] ||
    sl_die "$SL_RAPID was not loaded as arm64"
}
