#!/bin/bash
# The kernel lane's runner, baked into the image (lane.service starts it):
#   input:  the virtio disk with serial lane-in holds a plain tar; it is
#           unpacked to /opt/lane/in and /opt/lane/in/main.sh runs with the
#           output directory as its argument;
#   output: /opt/lane/out is written as a plain tar to the virtio disk with
#           serial lane-out; then the machine powers off.
IN=/dev/disk/by-id/virtio-lane-in
OUT=/dev/disk/by-id/virtio-lane-out
echo "LANE: runner start uptime=$(cut -d' ' -f1 /proc/uptime)"
for _ in $(seq 300); do
	[ -b $IN ] && [ -b $OUT ] && break
	sleep 0.1
done
rm -rf /opt/lane/in /opt/lane/out
mkdir -p /opt/lane/in /opt/lane/out
tar -xf $IN -C /opt/lane/in || echo "LANE: cannot read the input disk"
rc=99
if [ -x /opt/lane/in/main.sh ]; then
	cd /opt/lane/in && ./main.sh /opt/lane/out
	rc=$?
fi
echo "$rc" >/opt/lane/out/rc
tar -cf $OUT -C /opt/lane/out . && sync
echo "LANE: runner done rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
exit 0
