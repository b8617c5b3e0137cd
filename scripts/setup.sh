#!/usr/bin/env bash
# setup.sh installs and starts everything dockervisor's demo and tests need on
# a fresh Debian machine, as root. It is idempotent: run it as often as you
# like. Glance and Open vSwitch daemons are started by the test harness itself
# (each test run gets private ones); this script only installs them.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
	log "must run as root"
	exit 1
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
# Test images copy the static busybox into an otherwise empty root filesystem.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ovs-vsctl >/dev/null 2>&1 || need+=(openvswitch-switch)
command -v glance-api >/dev/null 2>&1 || need+=(glance-api)
# Firewall (security groups, floating IPs) and the CNI bridge plugin that
# the Linux-bridge benchmark compares against.
command -v nft >/dev/null 2>&1 || need+=(nftables)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
# OCI archives made by the real tools.
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
# The snapshot benchmark's baseline pipes `docker save` into Glance with curl.
command -v curl >/dev/null 2>&1 || need+=(curl)
# Placement (the shared inventory) and its CLI, for the multi-host tests.
command -v placement-api >/dev/null 2>&1 || need+=(placement-api)
command -v openstack >/dev/null 2>&1 || need+=(python3-openstackclient)
/usr/bin/python3 -c 'import osc_placement' >/dev/null 2>&1 || need+=(python3-osc-placement)
# The tests serve Placement as Debian does, by uwsgi with several worker
# processes (its HTTP router keeps clients' connections alive), on a private
# MariaDB: sqlite cannot take writers in several processes. Only the server
# binaries (mariadbd, mariadb-install-db) and the client tools
# (my_print_defaults), not the mariadb-server package and its service.
command -v uwsgi >/dev/null 2>&1 || need+=(uwsgi-core)
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || need+=(uwsgi-plugin-python3)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server-core)
command -v my_print_defaults >/dev/null 2>&1 || need+=(mariadb-client-core)
/usr/bin/python3 -c 'import pymysql' >/dev/null 2>&1 || need+=(python3-pymysql)
# Distro images that boot systemd, and cloud-init's own config-drive reader.
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v cloud-init >/dev/null 2>&1 || need+=(cloud-init)
# LXC, the boot peer of the OS-instance benchmark (lxc-start on the OS
# image's root file system; its lxc-net bridge service is not started).
command -v lxc-start >/dev/null 2>&1 || need+=(lxc)
# crun, a second OCI runtime for instances (the Driver's WithRuntime); the
# engine registers it below where it can run.
command -v crun >/dev/null 2>&1 || need+=(crun)
# The SSH login test of OS instances logs in with the OpenSSH client.
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
# A network's DHCP server (package network/dhcp) is dnsmasq, started by the
# tests and labs themselves; its tests use ISC's DHCPv6 client as the peer.
[ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v dhclient >/dev/null 2>&1 || need+=(isc-dhcp-client)
# Nova itself, the peer of the metadata service's answers (its handler)
# and of the config drive (its InstanceMetadata, config drive writer,
# network model and unit-test fixtures), imported without any service.
/usr/bin/python3 -c 'import nova.api.metadata.handler, nova.virt.configdrive, nova.virt.netutils, nova.tests.unit.fake_network_cache_model' >/dev/null 2>&1 || need+=(python3-nova)
# The kernel lane (scripts/kernel-lane.sh) boots a Debian 12 VM with the
# stock kernel under qemu (software emulation: no KVM needed); its image is
# made with debootstrap (above) and mkfs.ext4 -d, with no loop device.
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)

if [ "${#need[@]}" -gt 0 ]; then
	log "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq -o DPkg::Lock::Timeout=600
	# Debian starts a package's daemons when it installs it; the tests and
	# the demo run private ones (own ports, sockets and data), so a
	# policy-rc.d (Debian's own mechanism, honoured by invoke-rc.d and
	# deb-systemd-invoke) keeps the distro's services from starting during
	# this install. One that was there before is left as it is.
	policy=/usr/sbin/policy-rc.d
	own_policy=false
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=true
	fi
	# glance-api pulls a large tree of recommends that the tests do not use.
	rc=0
	apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${need[@]}" >/dev/null || rc=$?
	if $own_policy; then rm -f "$policy"; fi
	[ "$rc" = 0 ] || exit "$rc"
fi

# A distro glance-api or placement-api started earlier (an older setup, a
# reboot) holds ports the private services may want: stop it through its
# own service manager, which knows its PID.
for svc in glance-api placement-api; do
	if [ -d /run/systemd/system ]; then
		if systemctl is-active --quiet "$svc" 2>/dev/null; then
			systemctl stop "$svc" || true
			systemctl disable --quiet "$svc" 2>/dev/null || true
		fi
	elif [ -x "/etc/init.d/$svc" ] && "/etc/init.d/$svc" status >/dev/null 2>&1; then
		"/etc/init.d/$svc" stop >/dev/null 2>&1 || true
	fi
done

# Start the Docker engine when it does not answer. There is no systemd here.
if ! docker info >/dev/null 2>&1; then
	log "starting dockerd"
	nohup dockerd >/var/log/dockerd.log 2>&1 &
	for _ in $(seq 1 60); do
		docker info >/dev/null 2>&1 && break
		sleep 0.5
	done
	if ! docker info >/dev/null 2>&1; then
		log "dockerd did not come up; see /var/log/dockerd.log"
		tail -20 /var/log/dockerd.log >&2 || true
		exit 1
	fi
fi
engine_has_crun() { docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}' | grep -qw crun; }
# The engine registers crun ("runtimes" in /etc/docker/daemon.json, which
# it reloads on SIGHUP), except on a host with hybrid cgroups (v1, with the
# unified hierarchy beside them), which crun refuses: there the tests
# register it with a private engine and check that refusal.
if [ ! -e /sys/fs/cgroup/cgroup.controllers ] && [ -e /sys/fs/cgroup/unified/cgroup.controllers ]; then
	log "hybrid cgroups: crun is not registered with the engine"
elif ! engine_has_crun; then
	log "registering crun with the engine (/etc/docker/daemon.json)"
	mkdir -p /etc/docker
	DAEMON_JSON=/etc/docker/daemon.json CRUN=$(command -v crun) /usr/bin/python3 - <<'PY'
import json, os
path, crun = os.environ["DAEMON_JSON"], os.environ["CRUN"]
conf = {}
if os.path.exists(path):
    with open(path) as f:
        text = f.read().strip()
    conf = json.loads(text) if text else {}
conf.setdefault("runtimes", {})["crun"] = {"path": crun}
with open(path + ".tmp", "w") as f:
    json.dump(conf, f, indent=2)
    f.write("\n")
os.replace(path + ".tmp", path)
PY
	kill -HUP "$(cat /var/run/docker.pid)"
	for _ in $(seq 1 20); do
		engine_has_crun && break
		sleep 0.5
	done
	engine_has_crun || {
		log "the engine did not register crun; see its log"
		exit 1
	}
fi
log "docker engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
