#!/bin/bash
# guest-main.sh OUT_DIR: the kernel lane's work inside the guest (passed in
# on the input disk each run as main.sh). It waits for the boot to finish,
# records the guest's facts, then runs the test binaries listed in
# tests.list, each in a copy of its package directory, with CI=true, and
# writes each one's -test.v=test2json output to OUT_DIR/tests/NAME.out.
#
# tests.list lines: NAME<TAB>PACKAGE_DIR<TAB>RUN_REGEXP<TAB>TIMEOUT_SECONDS<TAB>KIND<TAB>MODULE<TAB>STREAM
# (no field empty: "-" for none; KIND "bench": RUN_REGEXP names benchmarks, run LANE_BENCHTIME times and no
# tests; MODULE: a kernel module loaded before the binary runs and unloaded
# after; STREAM: A and B run side by side, each in order, then Z alone).
# lane.env: LANE_DEADLINE (guest uptime, in seconds, by which the last test
# must have ended), LANE_KERNEL_FEATURES, LANE_CRASH_KILLS and
# LANE_CRASH_TIME_SCALE (for TestCrashRecovery), LANE_PAUSE_ROUNDS (for
# TestPauseUnpauseRounds), LANE_BENCHTIME (iterations of each benchmark).
set -u
O=$1
mkdir -p "$O/tests"
. ./lane.env
up() { cut -d' ' -f1 /proc/uptime; }
upi() { cut -d. -f1 /proc/uptime; }
log() { echo "LANE: $*"; }

timeout 300 systemctl is-system-running --wait >"$O/system-state.txt" 2>&1
log "booted: $(cat "$O/system-state.txt") uptime=$(up)s"
systemctl --failed --no-legend >"$O/failed-units.txt" 2>&1
systemd-analyze >"$O/systemd-analyze.txt" 2>&1
# The engine starts at boot (docker.service is enabled, as on a user's host).
for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >"$O/docker-info.txt" 2>&1
# The machine's NIC, as a host has one: qemu's user network with
# restrict=on (nothing leaves the VM), an address from 100.64.0.0/10 that
# no test uses, and no default route.
for d in /sys/class/net/*; do
	[ -e "$d/device" ] || continue
	ip link set "${d##*/}" up && ip addr add 100.127.254.15/24 dev "${d##*/}" && log "NIC ${d##*/}: 100.127.254.15/24"
	break
done
{
	echo "kernel=$(uname -r)"
	echo "kernel_version=$(uname -v)"
	echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
	echo "cgroup_fs=$(stat -fc %T /sys/fs/cgroup)"
	echo "cgroup_controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
	echo "docker_version=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>&1)"
	echo "docker_cgroup_driver=$(docker info --format '{{.CgroupDriver}}' 2>&1)"
	echo "docker_cgroup_version=$(docker info --format '{{.CgroupVersion}}' 2>&1)"
	echo "docker_security=$(docker info --format '{{join .SecurityOptions ","}}' 2>&1)"
	echo "ovs_version=$(ovs-vswitchd --version 2>&1 | head -1)"
	echo "nft_version=$(nft --version 2>&1)"
	echo "systemd=$(systemctl --version | head -1)"
	echo "osimages=$(docker images --format '{{.Repository}}:{{.Tag}}' dockervisor/debian-os | paste -sd' ')"
	echo "boot_uptime=$(up)"
} >"$O/facts.txt"
sed 's/^/LANE: fact /' "$O/facts.txt"

export CI=true DOCKERVISOR_TEST_KERNEL_FEATURES="$LANE_KERNEL_FEATURES" DOCKERVISOR_CRASH_KILLS="$LANE_CRASH_KILLS" DOCKERVISOR_CRASH_TIME_SCALE="${LANE_CRASH_TIME_SCALE:-1}" DOCKERVISOR_PAUSE_ROUNDS="${LANE_PAUSE_ROUNDS:-100}" HOME=/root

# run_line NAME DIR RUN TIMEOUT KIND MODULE: one test binary run.
run_line() {
	local name=$1 dir=$2 run=$3 tmo=$4 kind=$5 mod=$6 left t0 rc secs
	left=$((LANE_DEADLINE - $(upi) - 15))
	if [ "$left" -lt 30 ]; then
		log "test $name: not run, out of time"
		echo "not run: the lane's deadline was reached" >"$O/tests/$name.notrun"
		return
	fi
	[ "$tmo" -le "$left" ] || tmo=$left
	log "test $name: start (-run '$run', timeout ${tmo}s) uptime=$(up)s"
	t0=$(date +%s)
	if [ -n "$mod" ]; then
		modprobe "$mod" >"$O/tests/$name.modprobe" 2>&1 || {
			log "test $name: modprobe $mod failed"
			echo "not run: modprobe $mod failed: $(cat "$O/tests/$name.modprobe")" >"$O/tests/$name.notrun"
			return
		}
		log "test $name: with module $mod ($(grep -c "^$mod " /proc/modules) loaded)"
	fi
	# -test.parallel 6: the tests mostly wait for the engine and the guest
	# (2 emulated CPUs would otherwise run 2 at a time).
	local sel=(-test.run "$run")
	[ "$kind" != bench ] || sel=(-test.run '^$' -test.bench "$run" -test.benchtime "${LANE_BENCHTIME:-4}x")
	# The subshell's "times": the CPU time of the test binary and of
	# the processes it started and waited for (not the engine's, nor
	# the containers').
	(cd "pkgs/$dir" && timeout -k 10 $((tmo + 20)) ./"$name".test -test.v=test2json "${sel[@]}" \
		-test.timeout "${tmo}s" -test.count=1 -test.parallel 6 >"$O/tests/$name.out" 2>&1
	r=$?
	times >"$O/tests/$name.times" # line 2: the children (in a pipe, times would be a subshell's)
	exit $r)
	rc=$?
	secs=$(($(date +%s) - t0))
	echo "$rc" >"$O/tests/$name.rc"
	echo "$secs" >"$O/tests/$name.secs"
	log "test $name: end rc=$rc ${secs}s (CPU of its processes: $(sed -n 2p "$O/tests/$name.times" 2>/dev/null))"
	[ -z "$mod" ] || modprobe -r "$mod" >>"$O/tests/$name.modprobe" 2>&1 || true
}

# run_stream S: the lines of stream S, in order.
run_stream() {
	local name dir run tmo kind mod stream
	while IFS=$'\t' read -r name dir run tmo kind mod stream; do
		[ -n "$name" ] && [ "$stream" = "$1" ] || continue
		[ "$mod" != - ] || mod=""
		run_line "$name" "$dir" "$run" "$tmo" "$kind" "$mod"
	done <tests.list
}

# cpu_jiffies: the guest's busy, total, user and kernel CPU time so far
# (/proc/stat, in 1/100 s).
cpu_jiffies() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t, $2+$3, $4+$7+$8}' /proc/stat; }

# Streams A and B side by side, then Z alone.
read -r busy0 total0 _ _ < <(cpu_jiffies)
run_stream A &
run_stream B &
wait
run_stream Z
read -r busy1 total1 user1 kernel1 < <(cpu_jiffies)
# How much of its two CPUs the guest used while the tests ran: near 100 %
# means the lane's time is the tests' CPU work under emulation.
log "tests' CPU use: $(( (busy1 - busy0) * 100 / (total1 - total0 + 1) )) % of the guest's CPUs"
# Where the CPU time went, by cgroup (seconds since boot; a cgroup's count
# keeps what its removed children used: the containers are system.slice's
# docker-*.scope, gone by now).
cg_secs() { awk '/^usage_usec/{printf "%d", $2/1e6}' "/sys/fs/cgroup/$1/cpu.stat" 2>/dev/null || echo "?"; }
log "CPU seconds: all $((busy1 / 100)) (user $((user1 / 100)), kernel $((kernel1 / 100)))," \
	"system.slice $(cg_secs system.slice), lane.service (the tests and what they start) $(cg_secs system.slice/lane.service)," \
	"docker.service $(cg_secs system.slice/docker.service), containerd.service $(cg_secs system.slice/containerd.service)"
# The daemons' own processes (the rest of containerd.service is the shims
# and runc, one set per container and exec).
daemon_secs() { ps -o times= -p "$(systemctl show -p MainPID --value "$1")" 2>/dev/null | tr -d ' '; }
log "CPU seconds of the daemons' own processes: dockerd $(daemon_secs docker.service), containerd $(daemon_secs containerd.service)"

# What the host may need to see why something failed.
docker ps -a >"$O/docker-ps.txt" 2>&1
dmesg >"$O/dmesg.txt" 2>&1
journalctl -b --no-pager 2>/dev/null | tail -n 20000 >"$O/journal.txt"
log "end uptime=$(up)s"
