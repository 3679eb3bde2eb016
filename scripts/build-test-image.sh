#!/usr/bin/env bash
# Builds the local test image `corral-test/busybox` from Debian's busybox-static package.
# Images cannot be pulled on the machines Corral is tested on, so the image is assembled
# from a rootfs and `docker import`ed. Idempotent: does nothing when the image exists.
set -euo pipefail

IMAGE="${CORRAL_TEST_IMAGE:-corral-test/busybox}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "image $IMAGE already present"
    exit 0
fi

if [ ! -x /bin/busybox ]; then
    echo "installing busybox-static (/bin/busybox is missing)"
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq busybox-static
fi

# A dynamically linked busybox would need libc inside the image.
if ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' \
    && ldd /bin/busybox >/dev/null 2>&1; then
    echo "/bin/busybox is not statically linked; install busybox-static" >&2
    exit 1
fi

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT

mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,www,root,proc,sys,dev}
chmod 1777 "$ROOTFS/tmp"
cp /bin/busybox "$ROOTFS/bin/busybox"

# Every applet becomes a symlink in /bin so `sh`, `httpd`, `nc`, `sleep`... resolve on PATH.
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] && continue
    ln -sf busybox "$ROOTFS/bin/$applet"
done

cat > "$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$ROOTFS/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
echo '<html><body>corral test image</body></html>' > "$ROOTFS/www/index.html"

tar -C "$ROOTFS" --numeric-owner -cf - . \
    | docker import \
        --change 'CMD ["sh"]' \
        --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$IMAGE"

echo "built image $IMAGE"
