#!/usr/bin/env bash
# build-image.sh OUT_DIR KERNEL_PACKAGE MIRROR DEB_CACHE
#
# Builds the kernel lane's guest from Debian 12 packages, without booting
# anything and without loop devices:
#   OUT_DIR/vmlinuz     the stock kernel of KERNEL_PACKAGE (not installed:
#                       the .deb is unpacked)
#   OUT_DIR/initrd.img  a hand-made busybox initramfs loading the 11 modules
#                       an ext4 root on virtio-blk needs
#   OUT_DIR/base.img    a sparse raw ext4 image of a debootstrap'd Debian 12
#                       with the packages in ./packages and the lane runner
# Run as root (scripts/kernel-lane.sh does, under its cache lock). Every
# trap found while proving this recipe is commented where it is avoided.
set -euo pipefail

OUT=${1:?OUT_DIR} KPKG=${2:?KERNEL_PACKAGE} MIRROR=${3:?MIRROR} DEBS=${4:?DEB_CACHE}
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=bookworm
APT=(apt-get -q -o DPkg::Lock::Timeout=900)
KV=${KPKG#linux-image-}

mkdir -p "$OUT" "$DEBS"
W=$(mktemp -d "$OUT/build.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"

# 1. The stock kernel: download the versioned package, unpack it.
mkdir kpkg
(cd kpkg && "${APT[@]}" download "$KPKG" >download.log 2>&1) || { cat kpkg/download.log >&2; exit 1; }
dpkg -x kpkg/"$KPKG"_*.deb kpkg/root
cp "kpkg/root/boot/vmlinuz-$KV" vmlinuz

# 2. The root file system. --include does not pull Recommends (apparmor is
#    listed for that reason).
pkgs=$(grep -v '^[[:space:]]*\(#\|$\)' "$HERE/packages" | paste -sd, -)
debootstrap --variant=minbase --cache-dir="$DEBS" --include="$pkgs" "$SUITE" rootfs "$MIRROR" >debootstrap.log 2>&1 ||
	{ tail -30 debootstrap.log >&2; exit 1; }
R=rootfs

# 3. The kernel's modules, without the hardware a VM does not have (391 MB
#    -> ~176 MB), and depmod, so that modprobe and the kernel's own module
#    autoloading find them.
mkdir -p "$R/usr/lib/modules"
cp -a "kpkg/root/lib/modules/$KV" "$R/usr/lib/modules/"
(cd "$R/usr/lib/modules/$KV/kernel" && rm -rf sound drivers/gpu drivers/media drivers/infiniband drivers/net/wireless \
	drivers/staging drivers/iio drivers/bluetooth net/bluetooth drivers/hid drivers/usb drivers/scsi/qla2xxx drivers/scsi/lpfc \
	drivers/net/ethernet/mellanox drivers/net/ethernet/intel drivers/net/ethernet/broadcom drivers/net/ethernet/chelsio \
	drivers/net/ethernet/qlogic drivers/net/ethernet/sfc drivers/isdn drivers/thunderbolt drivers/platform net/wireless net/mac80211)
depmod -b "$R" "$KV"

# 4. Guest configuration.
echo lane >"$R/etc/hostname"
printf '127.0.0.1 localhost lane\n::1 localhost\n' >"$R/etc/hosts"
# Root has no password: the machine has no network, and a developer can log
# in on the serial console to debug a run.
chroot "$R" passwd -d root >/dev/null
# The root file system is mounted read-write by the initramfs; the engine's
# data root (the OS test image loaded on the host) is the second disk.
printf 'LABEL=lanedocker /var/lib/docker ext4 defaults,x-systemd.device-timeout=60s 0 0\n' >"$R/etc/fstab"
# The engine registers crun beside its default runc, as a user who wants
# the faster runtime would.
mkdir -p "$R/etc/docker"
printf '{"runtimes": {"crun": {"path": "/usr/bin/crun"}}}\n' >"$R/etc/docker/daemon.json"
# The engine and containerd start at boot, as on a user's host. Open
# vSwitch's system daemons do not: the tests run private ones (and load the
# kernel module as the distribution's service would).
chroot "$R" systemctl disable openvswitch-switch.service ovsdb-server.service ovs-vswitchd.service >/dev/null 2>&1 || true
# Nor do LXC's (its bridge and dnsmasq, its autostart): the benchmark
# starts its LXC containers itself, with no network.
chroot "$R" systemctl disable lxc.service lxc-net.service lxc-monitord.service >/dev/null 2>&1 || true
# Nothing periodic, nothing that needs a network.
chroot "$R" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer systemd-timesyncd.service >/dev/null 2>&1 || true
install -m 0644 "$HERE/lane.service" "$R/etc/systemd/system/lane.service"
install -D -m 0755 "$HERE/guest-run.sh" "$R/opt/lane/run.sh"
chroot "$R" systemctl enable lane.service >/dev/null 2>&1
rm -rf "$R"/var/cache/apt/*.bin "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*

# 5. The initramfs: static busybox and the modules that mount an ext4 root
#    on virtio-blk (an initrd-less boot of Debian's kernel is impossible:
#    virtio_pci, virtio_blk and ext4 are modules). Built with busybox's own
#    cpio.
mkdir -p initramfs/bin initramfs/m
cp "$R/bin/busybox" initramfs/bin/
M=kpkg/root/lib/modules/$KV/kernel
for f in drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_pci_legacy_dev.ko \
	drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci.ko drivers/block/virtio_blk.ko \
	lib/crc16.ko fs/mbcache.ko fs/jbd2/jbd2.ko crypto/crc32c_generic.ko fs/ext4/ext4.ko; do
	cp "$M/$f" initramfs/m/
done
install -m 0755 "$HERE/init" initramfs/init
(cd initramfs && find . | ../rootfs/bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 >../initrd.img)

# 6. The root image: sparse, filled by mkfs.ext4 -d (no loop device, no
#    mount). The lane boots it with snapshot=on, so it is never modified.
truncate -s 8G base.img
mkfs.ext4 -q -F -L laneroot -d rootfs base.img

mv vmlinuz initrd.img base.img "$OUT/"
