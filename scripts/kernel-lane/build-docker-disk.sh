#!/usr/bin/env bash
# build-docker-disk.sh OUT_IMG IMAGE_REF...
#
# Makes the kernel lane's second disk: a sparse ext4 image holding a Docker
# data root (overlay2) with IMAGE_REF... loaded, which the guest mounts at
# /var/lib/docker (by its label, lanedocker). The images are loaded here, on
# the host, by a private dockerd of the same Debian package as the guest's:
# loading the 250 MB OS image in the guest under software emulation costs
# 1.5 to more than 13 minutes, here seconds. The lane boots the disk with
# snapshot=on, so it is never modified. Run as root.
set -euo pipefail
OUT=${1:?OUT_IMG}
shift
[ $# -gt 0 ] || { echo "build-docker-disk: no image" >&2; exit 2; }
W=$(mktemp -d "$(dirname "$OUT")/docker-build.XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	# Anything the engine left mounted below W (it should leave nothing).
	findmnt -rn -o TARGET | grep "^$W/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/root" "$W/exec"
echo '{}' >"$W/daemon.json" # not the host's /etc/docker/daemon.json
# In a network namespace of its own: with --bridge=none dockerd deletes
# docker0, which here would be the host engine's.
unshare --net dockerd --config-file "$W/daemon.json" --data-root "$W/root" --exec-root "$W/exec" --pidfile "$W/docker.pid" \
	-H "unix://$W/docker.sock" --storage-driver overlay2 --bridge=none --iptables=false --ip6tables=false \
	--ip-masq=false >"$W/dockerd.log" 2>&1 &
pid=$!
D=(docker -H "unix://$W/docker.sock")
for _ in $(seq 300); do
	"${D[@]}" info >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { tail -20 "$W/dockerd.log" >&2; exit 1; }
	sleep 0.2
done
for ref in "$@"; do
	docker save "$ref" | "${D[@]}" load -q >/dev/null
	"${D[@]}" image inspect "$ref" >/dev/null
done
kill -TERM "$pid"
wait "$pid" || true
pid=""
# Only the images and their layers: the guest's engine makes its own
# networks, containerd state and runtimes.
rm -rf "$W/root/network" "$W/root/containerd" "$W/root/runtimes" "$W/root/tmp" "$W/root/swarm" "$W/root/buildkit"
rm -f "$OUT.tmp"
truncate -s 24G "$OUT.tmp"
mkfs.ext4 -q -F -L lanedocker -d "$W/root" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
