#!/usr/bin/env bash
# kernel-lane.sh [-run REGEXP] [-bench] [-benchtime N] [-timeout SECONDS] [-out DIR]
#
# The kernel lane: runs the tests whose behaviour depends on the kernel or
# the cgroup version inside a Debian 12 VM with Debian's own kernel (cgroup
# v2, the engine's systemd cgroup driver, 802.1Q, the Open vSwitch kernel
# datapath, AppArmor), booted under qemu with software emulation (TCG; no
# KVM is needed). The CI machine itself is cgroup v1 without modules.
#
#   1. builds the guest once and caches it under $DOCKERVISOR_LANE_CACHE
#      (default /var/cache/dockervisor/lane), keyed by the recipe's files,
#      the kernel package and the versions of the guest's packages;
#   2. puts the OS test image (image/osimage, built on the host) into a
#      Docker data root on a second disk the guest mounts at
#      /var/lib/docker, made once per image on the host and cached;
#   3. builds the selected packages' test binaries on the host (go test -c,
#      CGO_ENABLED=0; the race detector runs in the host suite);
#   4. boots the guest (the cached image is never modified: snapshot=on),
#      runs the binaries with CI=true, brings their output back;
#   5. prints the guest's kernel, cgroup version and the engine's cgroup
#      driver, and a per-package summary.
#
# It exits non-zero when a test fails or skips, a binary matches no test or
# does not finish, the guest is not a cgroup v2 / systemd-driver host, or
# the VM does not finish in time.
#
#   -run REGEXP      narrow the lane to its tests matching REGEXP (top-level
#                    names; "TestX/sub" narrows subtests too)
#   -bench           run the lane's benchmarks too (BenchmarkOSInstance:
#                    unprivileged vs --privileged boots, runc vs crun);
#                    CI leaves them out
#   -benchtime N     iterations of each benchmark (default 4: under the
#                    emulation, two were too few to tell the peers apart)
#   -timeout SECONDS how long the VM may run (default 2400, plus the
#                    benchmarks' timeouts with -bench)
#   -out DIR         where to keep the results (default: a new /tmp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$PATH:/usr/local/go/bin"

# ---------------------------------------------------------------------------
# The lane's tests: one line per test binary run,
#   package  timeout(s)  stream  -run regexp (every test whose behaviour depends on the kernel or cgroup version)
# The guest runs streams A and B at the same time (its two CPUs: one test
# binary at a time keeps one busy), each stream's lines in order, then the
# lines of stream Z one at a time (runs that change the whole kernel's
# behaviour, such as loading a module). A package may have several lines
# (its tests split over the streams). For benchmarks (run -benchtime N
# times, their figures printed at the end; with -bench only; the timeout is
# per iteration):
#   package  timeout(s)  stream  bench:regexp
# To run tests again with a kernel module loaded (modprobe before,
# modprobe -r after; stream Z only):
#   package  timeout(s)  Z  with:MODULE regexp
# A regexp may be followed by " except:REGEXP": tests it leaves out (only
# helpers that another test of the selection runs in a subprocess, and
# tests of a test suite's own power that do not depend on the kernel).
# Add a package (or a test to a regexp) here; nothing else needs to change.
SELECTION='
./hypervisor/docker        1800 A  ^(TestAgentConformance|TestCrashRecovery|TestResizeKernelLimits|TestLimitsHoldAfterEveryTransition|TestUnlimitedMemoryReportsHostMemory|TestInstanceStats|TestAllInstanceStats.*|TestBulkStats.*|TestEventReasonOOM|TestOOMKillInKernelLog|TestCgroup2SuperOptions|TestSplitContainerCgroup|TestHostResourcesCountOnlyOwnInstances|TestTLSVerification|TestOSInstancePowerCycle|TestOSInstanceBoots|TestOSInstanceBootWithoutReport|TestInstanceNetworkNamespace)$
./internal/enginestats     300  A  .
./network/dhcp             180  A  .
./network/svcport          180  A  .
./stats/procfs             120  B  .
./stats/netcounters        120  B  .
./network/linuxbridge      300  B  . except:^(TestDeleteByNameConformance|TestSuiteCatchesDeleteByName)$
./network/novanetwork      300  B  .
./network/ovs              450  B  .
./network/ovs/ovsrun       180  B  .
./network/secgroup         300  B  .
./network/floatingip       180  B  .
./network/nldump           120  B  .
./network/internal/linkutil 120 B  .
./internal/netnsdir        120  B  .
./internal/testenv         300  B  ^(TestEngineStartKillStop|TestEnginesDistinct|TestEngineRestart|TestBusyboxImageRuns|TestStartOVS|TestOVSKillDB)$
./hypervisor/docker        1500 B  ^(TestOSInstanceMetadataService|TestOSInstanceFaults|TestOSInstanceCloudInit|TestOSInstanceDHCPAndSLAAC|TestOSInstanceSSHLogin|TestOSInstanceCrun|TestOSInstanceNoInit|TestOSInstanceInitCheckedOncePerImage|TestSpawnInspectsImageOnce|TestOSInstanceGateShell|TestOSCgroupMode|TestCgroupGateScript|TestOSConfig|TestVIFsOVSHybrid|TestVIFsOVSDirect|TestVIFsFirewall|TestFreezerState|TestPauseAfterAnEngineEcho|TestPauseUnpauseRounds)$
./hypervisor/docker        450  A  bench:^BenchmarkOSInstance$ (with -bench only)
./network/secgroup         300  Z  with:nf_conntrack_bridge .
'
# Kernel features the guest must have: the tests that need one fail (not
# skip) when it is missing (internal/testenv reads this variable).
KERNEL_FEATURES=vlan,ovs-kernel-datapath
# Kills of the crash test in the lane (the host suite runs 200).
CRASH_KILLS=${DOCKERVISOR_LANE_CRASH_KILLS:-20}
# How much longer an operation takes in the guest than on this host: the
# crash test's timer kills spread over that much more time.
CRASH_TIME_SCALE=${DOCKERVISOR_LANE_CRASH_TIME_SCALE:-6}
# Rounds of TestPauseUnpauseRounds in the lane (the host suite runs 100):
# the lane checks the cgroup v2 freezer, which a few rounds show.
PAUSE_ROUNDS=${DOCKERVISOR_LANE_PAUSE_ROUNDS:-25}
# ---------------------------------------------------------------------------

RUN="" VM_TIMEOUT="" OUT="" BENCH_ON=false BENCHTIME=4 BENCH_TMO=0
while [ $# -gt 0 ]; do
	case $1 in
	-run) RUN=${2:?-run needs a regexp}; shift 2 ;;
	-timeout) VM_TIMEOUT=${2:?-timeout needs seconds}; shift 2 ;;
	-bench) BENCH_ON=true; shift ;;
	-benchtime) BENCHTIME=${2:?-benchtime needs a number of iterations}; shift 2 ;;
	-out) OUT=${2:?-out needs a directory}; shift 2 ;;
	-h | -help | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "kernel-lane: unknown argument $1 (see -help)" >&2; exit 2 ;;
	esac
done

# Whole numbers without leading zeros (which bash's arithmetic reads as octal).
case $BENCHTIME in
'' | *[!0-9]* | 0*) echo "kernel-lane: -benchtime needs a positive number of iterations, not '$BENCHTIME'" >&2; exit 2 ;;
esac
case $VM_TIMEOUT in
*[!0-9]* | 0*) echo "kernel-lane: -timeout needs a positive number of seconds, not '$VM_TIMEOUT'" >&2; exit 2 ;;
esac
log() { printf 'kernel-lane: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s; }
T0=$(now)
[ "$(id -u)" -eq 0 ] || die "must run as root (it builds a root file system and the tests need root)"
for b in qemu-system-x86_64 debootstrap go docker dockerd apt-get dpkg mkfs.ext4 flock; do
	command -v $b >/dev/null || die "$b is missing: run scripts/setup.sh"
done

CACHE=${DOCKERVISOR_LANE_CACHE:-/var/cache/dockervisor/lane}
LANE=$ROOT/scripts/kernel-lane
mkdir -p "$CACHE"
OUT=${OUT:-$(mktemp -d /tmp/kernel-lane.XXXXXX)}
mkdir -p "$OUT"
# A reused -out directory: nothing of an earlier run is read as this one's.
rm -rf "$OUT/json" "$OUT/tests" "$OUT/rc" "$OUT/facts.txt"
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/kernel-lane-work.XXXXXX")
BUILD_PID=""
# On the way out: stop the background build (its go command too, which
# would otherwise write the test binaries into a $WORK made again) before
# removing $WORK.
cleanup() {
	if [ -n "$BUILD_PID" ]; then
		for p in $(ps -o pid= --ppid "$BUILD_PID" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
		kill "$BUILD_PID" 2>/dev/null || true
		wait "$BUILD_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# --- 1. the guest image, keyed by its inputs -------------------------------
MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d/debian.sources}"
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$KPKG" ] || die "apt-cache knows no linux-image-amd64 (run apt-get update)"
guest_pkgs=$(grep -v '^[[:space:]]*\(#\|$\)' "$LANE/packages")
KEY=$( {
	echo "mirror $MIRROR"
	# shellcheck disable=SC2086 # one word per package
	apt-cache show --no-all-versions "$KPKG" $guest_pkgs 2>/dev/null | grep -E '^(Package|Version):'
	(cd "$LANE" && sha256sum build-image.sh init lane.service guest-run.sh packages)
} | sha256sum | cut -c1-16)
BASE=$CACHE/base-$KEY

build_base() {
	exec 9>"$CACHE/lock"
	flock 9
	if [ ! -f "$BASE/base.img" ]; then
		log "building the guest image $KEY (Debian 12, $KPKG; a few minutes, once)"
		local t=$(now)
		rm -rf "$BASE.tmp"
		bash "$LANE/build-image.sh" "$BASE.tmp" "$KPKG" "$MIRROR" "$CACHE/debs" || die "building the guest image failed"
		echo "$KPKG" >"$BASE.tmp/kernel-package"
		rm -rf "$BASE" && mv "$BASE.tmp" "$BASE"
		log "guest image built in $(($(now) - t))s"
	fi
	# Images not used for a week go (other branches' keys included).
	find "$CACHE" -maxdepth 1 -name 'base-*' -type d ! -newermt '-7 days' ! -path "$BASE" -exec rm -rf {} + 2>/dev/null || true
	touch "$BASE"
	flock -u 9
}

# --- 3. (in the background) the test binaries ------------------------------
declare -a NAMES DIRS TMOS RUNS BENCH MODS EXCEPT STREAMS
declare -A NAMED
while read -r pkg tmo stream run; do
	[ -n "$pkg" ] || continue
	case $stream in
	A | B | Z) ;;
	*) die "the selection's line for $pkg names stream '$stream' (A, B or Z)" ;;
	esac
	dir=${pkg#./}
	name=${dir//\//_} bench="" mod="" except='^$'
	case $run in
	*" except:"*) except=${run##* except:} run=${run% except:*} ;;
	esac
	case $run in
	bench:*)
		# Benchmarks are measurements: they run with -bench only.
		$BENCH_ON || continue
		bench=${run#bench:} bench=${bench%% *} name=${name}_bench
		tmo=$((tmo * BENCHTIME)) BENCH_TMO=$((BENCH_TMO + tmo))
		;;
	with:*)
		[ "$stream" = Z ] || die "the selection's with: line for $pkg must be in stream Z"
		mod=${run%% *} mod=${mod#with:} run=${run#* } name=${name}_with_$mod
		;;
	esac
	# A package's second line runs as NAME_2, and so on.
	n=${NAMED[$name]:-0} NAMED[$name]=$((n + 1))
	[ "$n" -eq 0 ] || name=${name}_$((n + 1))
	NAMES+=("$name") DIRS+=("$dir") TMOS+=("$tmo") RUNS+=("$run") BENCH+=("$bench") MODS+=("$mod") EXCEPT+=("$except") STREAMS+=("$stream")
done <<<"$SELECTION"
# The VM's default time: the tests' 2400 s and the benchmarks' timeouts.
[ -n "$VM_TIMEOUT" ] || VM_TIMEOUT=$((2400 + BENCH_TMO))

build_tests() {
	local pkgs=() i
	for i in "${!DIRS[@]}"; do pkgs+=("./${DIRS[$i]}"); done
	mkdir -p "$WORK/bin"
	# shellcheck disable=SC2046 # one word per package
	CGO_ENABLED=0 go test -c -o "$WORK/bin/" $(printf '%s\n' "${pkgs[@]}" | sort -u) >"$WORK/go-build.log" 2>&1 || return 1
	for i in "${!DIRS[@]}"; do
		cp "$WORK/bin/$(basename "${DIRS[$i]}").test" "$WORK/bin/${NAMES[$i]}.test" || return 1
	done
}
tb=$(now)
build_tests &
BUILD_PID=$!

build_base

# --- 2. the OS test image, on the guest's docker disk --------------------
boot() { # boot INPUT_TAR OUT_DIR TIMEOUT
	local in=$1 out=$2 tmo=$3 rc
	rm -f "$WORK/out.img" && truncate -s 1G "$WORK/out.img"
	set +e
	# -cpu qemu64: the baseline x86-64 CPU costs TCG about a sixth less
	# CPU time than -cpu max (measured on the OS-instance tests).
	# tsc=reliable: qemu64 claims neither an invariant TSC nor Intel, so
	# with two vCPUs the kernel calls the TSCs unsynchronized and falls
	# back to the HPET. Then every clock read in the guest (the Go
	# runtimes of dockerd, containerd and the tests read it all the time)
	# is a system call and an emulated device access. Under TCG the TSC
	# is the host's clock for every vCPU, so it is synchronized. (It
	# saved only 1-2 % of the lane's time: the clock is not where the
	# guest's CPU goes.)
	timeout -k 10 "$tmo" qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu qemu64 -smp 2 -m 4096 \
		-nographic -no-reboot -nic user,model=virtio-net-pci,restrict=on \
		-kernel "$BASE/vmlinuz" -initrd "$BASE/initrd.img" \
		-append 'console=ttyS0 root=/dev/vda rw panic=-1 loglevel=4 tsc=reliable' \
		-drive "file=$BASE/base.img,format=raw,if=none,id=root,snapshot=on,cache=unsafe" -device virtio-blk-pci,drive=root \
		-drive "file=$DDISK,format=raw,if=none,id=docker,snapshot=on,cache=unsafe" -device virtio-blk-pci,drive=docker,serial=lane-docker \
		-drive "file=$in,format=raw,if=none,id=in,readonly=on" -device virtio-blk-pci,drive=in,serial=lane-in \
		-drive "file=$WORK/out.img,format=raw,if=none,id=out,cache=unsafe" -device virtio-blk-pci,drive=out,serial=lane-out \
		</dev/null 2>&1 | tee "$out/console.log" | sed -u -n 's/\r$//; s/.*LANE: /  guest: /p' >&2
	rc=${PIPESTATUS[0]}
	set -e
	tar -xf "$WORK/out.img" -C "$out" 2>/dev/null || true
	return "$rc"
}

read -r OSREF OSID < <(go run ./scripts/kernel-lane/lanetool osimage) || die "the OS test image could not be built or found on the host's engine"
DKEY=$( {
	echo "$OSREF $OSID"
	dockerd --version
	(cd "$LANE" && sha256sum build-docker-disk.sh) # not the path: one key for every checkout
} | sha256sum | cut -c1-16)
DDISK=$CACHE/docker-$DKEY.img
if [ ! -f "$DDISK" ]; then
	exec 9>"$CACHE/lock"
	flock 9
	if [ ! -f "$DDISK" ]; then
		log "making the guest's docker disk with $OSREF (once per image)"
		t=$(now)
		bash "$LANE/build-docker-disk.sh" "$DDISK" "$OSREF" || die "making the docker disk failed"
		log "docker disk made in $(($(now) - t))s"
	fi
	find "$CACHE" -maxdepth 1 -name 'docker-*.img' ! -newermt '-7 days' ! -path "$DDISK" -delete 2>/dev/null || true
	flock -u 9
fi
touch "$DDISK"

# --- 3. the test binaries and the selection --------------------------------
wait "$BUILD_PID" || { BUILD_PID=""; cat "$WORK/go-build.log" >&2; die "go test -c failed"; }
BUILD_PID=""
log "test binaries built in $(($(now) - tb))s"
IN=$WORK/in
mkdir -p "$IN/pkgs"
: >"$IN/tests.list"
declare -A CHOSEN # package and test -> the line that runs it
for i in "${!NAMES[@]}"; do
	name=${NAMES[$i]} dir=${DIRS[$i]} run=${RUNS[$i]} bench=${BENCH[$i]}
	[ -z "$bench" ] || run=$bench
	bin=$WORK/bin/$name.test
	# Which of the package's tests the lane runs: its selection, narrowed
	# by -run. Listing on the host catches a selection that matches nothing.
	kinds='Test|Example|Fuzz'
	[ -z "$bench" ] || kinds=Benchmark
	mapfile -t sel < <("$bin" -test.list "$run" | grep -E "^($kinds)" | grep -v -E -- "${EXCEPT[$i]}")
	[ ${#sel[@]} -gt 0 ] || die "the lane's -run for $dir ($run) matches no test"
	# Tests split over a package's lines: each runs once (a "with:" line
	# runs them again on purpose).
	if [ -z "${MODS[$i]}" ]; then
		for tst in "${sel[@]}"; do
			[ -z "${CHOSEN[$dir $tst]:-}" ] || die "$dir $tst is selected by two lines (${CHOSEN[$dir $tst]} and $name)"
			CHOSEN[$dir $tst]=$name
		done
	fi
	sub=""
	if [ -n "$RUN" ]; then
		top=${RUN%%/*}
		[ "$top" = "$RUN" ] || sub=/${RUN#*/}
		mapfile -t sel < <(printf '%s\n' "${sel[@]}" | grep -E -- "$top" || true)
		[ ${#sel[@]} -gt 0 ] || continue
	fi
	mkdir -p "$IN/pkgs/$dir"
	mv "$bin" "$IN/pkgs/$dir/$name.test"
	[ ! -d "$dir/testdata" ] || cp -r "$dir/testdata" "$IN/pkgs/$dir/"
	# No field is empty ("-" for none): read with IFS=tab collapses empty ones.
	kind=-
	[ -z "$bench" ] || kind=bench
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$dir" "^($(IFS='|'; echo "${sel[*]}"))\$$sub" "${TMOS[$i]}" "$kind" "${MODS[$i]:--}" "${STREAMS[$i]}" >>"$IN/tests.list"
done
[ -s "$IN/tests.list" ] || die "no test of the lane matches -run $RUN"
install -m 0755 "$LANE/guest-main.sh" "$IN/main.sh"
# The guest's deadline leaves room for the boot before and the output after.
printf 'LANE_DEADLINE=%d\nLANE_KERNEL_FEATURES=%s\nLANE_CRASH_KILLS=%d\nLANE_CRASH_TIME_SCALE=%d\nLANE_PAUSE_ROUNDS=%d\nLANE_BENCHTIME=%d\n' $((VM_TIMEOUT - 60)) "$KERNEL_FEATURES" "$CRASH_KILLS" "$CRASH_TIME_SCALE" "$PAUSE_ROUNDS" "$BENCHTIME" >"$IN/lane.env"
tar -C "$IN" -cf "$WORK/in.tar" .
log "guest image $KEY, OS image $OSREF; packages: $(cut -f1 "$IN/tests.list" | paste -sd' ')"

# --- 4. the run ------------------------------------------------------------
tv=$(now)
vm_rc=0
boot "$WORK/in.tar" "$OUT" "$VM_TIMEOUT" || vm_rc=$?
vm_secs=$(($(now) - tv))

# --- 5. the results --------------------------------------------------------
fail=0
if [ "$vm_rc" -ne 0 ]; then
	[ "$vm_rc" -eq 124 ] && log "the VM did not finish in ${VM_TIMEOUT}s" || log "qemu exited with $vm_rc"
	fail=1
fi
[ -f "$OUT/rc" ] || { log "the guest wrote no results; console: $OUT/console.log"; fail=1; }
if [ -f "$OUT/facts.txt" ]; then
	fact() { sed -n "s/^$1=//p" "$OUT/facts.txt"; }
	echo "guest kernel:   $(fact kernel) ($(fact kernel_version))"
	echo "guest cgroup:   $(fact cgroup_fs) (controllers: $(fact cgroup_controllers))"
	echo "guest engine:   Docker $(fact docker_version), cgroup driver $(fact docker_cgroup_driver), cgroup v$(fact docker_cgroup_version)"
	echo "guest other:    $(fact ovs_version); $(fact nft_version); $(fact systemd); clocksource $(fact clocksource)"
	# The lane exists to prove the hosts users have; anything else is a
	# broken lane.
	[ "$(fact cgroup_fs)" = cgroup2fs ] && [ "$(fact docker_cgroup_driver)" = systemd ] ||
		{ log "the guest is not a cgroup v2 host with the systemd cgroup driver"; fail=1; }
fi
mkdir -p "$OUT/json"
for f in "$OUT"/tests/*.out; do
	[ -e "$f" ] || continue
	name=$(basename "$f" .out)
	dir=$(awk -F'\t' -v n="$name" '$1 == n {print $2}' "$IN/tests.list")
	go tool test2json -t -p "github.com/dockervisor/dockervisor/$dir" <"$f" >"$OUT/json/$name.json"
done
for f in "$OUT"/tests/*.notrun "$OUT"/tests/*.secs; do [ ! -e "$f" ] || cp "$f" "$OUT/json/"; done
for name in $(cut -f1 "$IN/tests.list"); do
	[ -e "$OUT/json/$name.json" ] || [ -e "$OUT/json/$name.notrun" ] ||
		echo "not run: the VM ended before it" >"$OUT/json/$name.notrun"
done
go run ./scripts/kernel-lane/lanetool report "$OUT/json" || fail=1
log "VM ${vm_secs}s, lane ${SECONDS}s in all; results in $OUT"
exit $fail
