#!/usr/bin/python3
"""Write config drives with Nova's own code, for a corpus of network_info.

Usage: nova_config_drive.py corpus   < {}
       nova_config_drive.py drives   < {"instance": INSTANCE, "runs": [RUN]}

"corpus" prints {"nova_version": V, "cases": [{"name": N, "network_info":
JSON}]}: the corpus of network_info samples below, built with Nova's model
classes (nova.network.model) as Nova's Neutron code builds them (and two of
Nova's own unit-test fixtures), serialised as Nova stores them.

"drives" (with "network_info": {N: JSON} too, as "corpus" printed them)
prints one {"tree": {PATH: BASE64}, "network_data": BASE64} per RUN
{"case": N, "drop": [INDEX], "conf": {OPTION: VALUE}, "instance":
INSTANCE}: the config drive Nova's libvirt driver writes for the instance
with that case's network_info (less the VIFs at the indices in "drop"):
nova.api.metadata.base.InstanceMetadata and nova.virt.configdrive's
ConfigDriveBuilder writing the files, and what get_network_metadata
returns. The [api] options in "conf" are set as a nova.conf would.

Nothing is faked but what needs a database or a service: the instance is
a real nova.objects.Instance with the caller's values; its block device
mappings (none), its security groups (the caller's), the EC2 ids (the
caller's) and os.urandom (the caller's random seed) are stubbed.

Debian's Nova is 26 (Zed). Nova's master knows one more OpenStack
metadata version, 2025-04-04 (Epoxy), whose files equal 2020-10-14's for
an instance without shares: it is added to Zed's list.
"""
import base64
import copy
import json
import logging as pylogging
import os
import sys
import tempfile
import types

from oslo_log import log as logging

import nova.conf
from nova import context
from nova import objects
from nova import version

CONF = nova.conf.CONF
logging.register_options(CONF)
CONF([], project="nova", default_config_files=[])
pylogging.disable(pylogging.CRITICAL)
objects.register_all()

from nova.api.metadata import base  # noqa: E402 (after objects)
from nova.network import model as m  # noqa: E402
from nova.network import security_group_api  # noqa: E402
from nova.tests.unit import fake_network_cache_model as fake  # noqa: E402
from nova.virt import configdrive  # noqa: E402
from nova.virt import netutils  # noqa: E402

if "2025-04-04" not in base.OPENSTACK_VERSIONS:
    base.OPENSTACK_VERSIONS.append("2025-04-04")


# The corpus. Ports are built as nova.network.neutron builds them:
# _get_subnets_from_port (cidr, a gateway IP even when Neutron has none,
# ipv6_address_mode and dhcp_server in the meta, dns, host routes),
# _nw_info_build_network (id, bridge, label, mtu in the meta) and
# _build_vif_model (devname "tap" + port ID[:11], details, active...).

def port_id(n):
    return "f%07d-0000-4000-8000-%012d" % (n, n)


def mac(n):
    return "fa:16:3e:00:00:%02x" % n


def gw(address):
    return m.IP(address=address, type="gateway")


def fixed(address, *floating):
    return m.FixedIP(address=address, floating_ips=[
        m.IP(address=f, type="floating") for f in floating])


def subnet(cidr, ips, gateway=None, dns=(), routes=(), **meta):
    s = m.Subnet(cidr=cidr, gateway=gw(gateway), **meta)
    for a in ips:
        s.add_ip(a if isinstance(a, m.IP) else fixed(a))
    for d in dns:
        s.add_dns(m.IP(address=d, type="dns"))
    for dest, nexthop in routes:
        s.add_route(m.Route(cidr=dest, gateway=gw(nexthop)))
    return s


def network(subnets, net_id="net-a", mtu=1450, bridge="br-int", **meta):
    if mtu is not None:
        meta["mtu"] = mtu
    return m.Network(id=net_id, bridge=bridge, label="private",
                     subnets=subnets, **meta)


def vif(n, net, type="ovs", devname=True, address=True, **kw):
    pid = port_id(n)
    details = {"port_filter": True, "ovs_hybrid_plug": True,
               "datapath_type": "system", "bridge_name": "br-int"}
    if type == "bridge":
        details = {"port_filter": True}
    return m.VIF(id=pid, address=mac(n) if address else None, network=net,
                 type=type, details=details,
                 devname=("tap" + pid)[:m.NIC_NAME_LEN] if devname else None,
                 ovs_interfaceid=pid if type == "ovs" else None,
                 active=True, vnic_type="normal", **kw)


V4 = dict(cidr="10.1.0.0/24", gateway="10.1.0.1", dns=["10.1.0.2", "8.8.8.8"],
          routes=[("192.168.0.0/16", "10.1.0.254")])
V6 = dict(cidr="fd00:1::/64", gateway="fd00:1::1", dns=["fd00:1::2"])


def v4(ips=("10.1.0.5",), **kw):
    return subnet(ips=list(ips), **dict(V4, **kw))


def v6(ips=("fd00:1::5",), **kw):
    return subnet(ips=list(ips), **dict(V6, **kw))


def every_vif_type():
    types = sorted({v for k, v in vars(m).items()
                    if k.startswith("VIF_TYPE_")} | {"ethernet"})
    return [vif(i, network([subnet("10.%d.0.0/24" % (i + 10),
                                   ["10.%d.0.5" % (i + 10)])],
                           net_id="net-%d" % i),
                type=t, devname=False)
            for i, t in enumerate(types)]


def nova_metadata_fixture():
    # nova/tests/unit/network/test_network_info.py TestNetworkMetadata.
    netinfo = m.NetworkInfo([fake.new_vif({"type": "ethernet"})])
    netinfo[0]["network"]["subnets"][0] = fake.new_subnet(version=4)
    netinfo[0]["network"]["subnets"][1] = fake.new_subnet(version=6)
    netinfo[0]["network"]["meta"]["mtu"] = 1500
    return list(netinfo)


CORPUS = {
    "static-ipv4": lambda: [vif(1, network([v4()]))],
    "static-dual": lambda: [vif(1, network([v4(), v6()]))],
    "dhcp-ipv4": lambda: [vif(1, network([v4(dhcp_server="10.1.0.2")]))],
    "dhcp-ipv6": lambda: [vif(1, network([v6(dhcp_server="fd00:1::2")]))],
    "dhcp-dual-slaac": lambda: [vif(1, network([
        v4(dhcp_server="10.1.0.2"),
        v6(ips=["fd00:1::f816:3eff:fe00:1"], ipv6_address_mode="slaac",
           dhcp_server="fd00:1::2")]))],
    "slaac": lambda: [vif(1, network([
        v6(ips=["fd00:1::f816:3eff:fe00:1"], ipv6_address_mode="slaac")]))],
    "dhcpv6-stateful": lambda: [vif(1, network([
        v4(), v6(ipv6_address_mode="dhcpv6-stateful",
                 dhcp_server="fd00:1::2")]))],
    "dhcpv6-stateless": lambda: [vif(1, network([
        v6(ips=["fd00:1::f816:3eff:fe00:1"],
           ipv6_address_mode="dhcpv6-stateless", dhcp_server="fd00:1::2")]))],
    "dhcp-and-static": lambda: [vif(1, network([
        v4(dhcp_server="10.1.0.2"), v6()]))],
    "enable-dhcp-without-server": lambda: [vif(1, network([
        v4(enable_dhcp=True), v6(enable_dhcp=False)]))],
    "no-network-id": lambda: [vif(1, network([v4()], net_id=None))],
    "cidr-null": lambda: [
        vif(1, network([m.Subnet(gateway=gw(None))], net_id="net-x"),
            devname=False),
        vif(2, network([v4()]), devname=False)],
    "floating-ips": lambda: [
        vif(1, network([v4(ips=[fixed("10.1.0.5", "203.0.113.5",
                                      "203.0.113.6")])])),
        vif(2, network([subnet("10.2.0.0/24",
                               [fixed("10.2.0.5", "203.0.113.7")])],
                       net_id="net-b"))],
    "every-vif-type": every_vif_type,
    "linux-bridge": lambda: [vif(1, network([v4()], bridge="brqabcdef01-23"),
                                 type="bridge")],
    "several-vifs": lambda: [
        vif(1, network([v4()])),
        vif(2, network([subnet("10.2.0.0/24", ["10.2.0.5"], "10.2.0.1",
                               dns=["8.8.8.8", "10.2.0.2", "10.2.0.2"])],
                       net_id="net-b"), type="bridge", devname=False),
        vif(3, network([v6(cidr="fd00:3::/64", ips=["fd00:3::5"],
                           gateway="fd00:3::1", dns=["fd00:1::2"])],
                       net_id="net-c", mtu=9000), type="ethernet")],
    "malformed-vif": lambda: [
        vif(1, network([v4()]), devname=False),
        vif(2, network([subnet("10.2.0.0/24", ["10.9.0.5"])],
                       net_id="net-b"), devname=False),
        vif(3, network([subnet("10.3.0.0/24", ["10.3.0.5"], "10.3.0.1")],
                       net_id="net-c"), devname=False)],
    "no-subnets": lambda: [
        vif(1, network([], net_id="net-x")),
        m.VIF(id=port_id(2), address=mac(2), type="ovs", network=None),
        vif(3, network([v4()]), devname=False)],
    "subnet-without-ips": lambda: [
        vif(1, network([subnet("10.1.0.0/24", [], "10.1.0.1")])),
        vif(2, network([v4(cidr="10.2.0.0/24", ips=["10.2.0.5"],
                           gateway="10.2.0.1")], net_id="net-b"))],
    "ipv6-only": lambda: [vif(1, network([v6()]))],
    "two-ipv4-subnets": lambda: [vif(1, network([
        v4(), subnet("10.5.0.0/24", ["10.5.0.9"], "10.5.0.1")]))],
    "no-gateway": lambda: [vif(1, network([
        subnet("10.1.0.0/24", ["10.1.0.5"], None, dns=["10.1.0.2"],
               routes=[("10.8.0.0/16", "10.1.0.254")])]))],
    "no-mac": lambda: [vif(1, network([v4()]), address=False)],
    "no-mtu": lambda: [vif(1, network([v4()], mtu=None))],
    "empty": lambda: [],
    "nova-fixture-metadata": nova_metadata_fixture,
    "nova-fixture-default": lambda: [fake.new_vif()],
}


def corpus():
    cases = []
    for name, build in CORPUS.items():
        ni = m.NetworkInfo(build())
        cases.append({"name": name, "network_info": ni.json()})
    return {"nova_version": version.version_string_with_package(),
            "cases": cases}


# The instance, as Nova's objects hold it.

def stub_services(inst_data):
    objects.BlockDeviceMappingList.get_by_instance_uuid = classmethod(
        lambda cls, ctxt, uuid: objects.BlockDeviceMappingList(objects=[]))
    security_group_api.get_instance_security_groups = (
        lambda ctxt, instance, detailed=False:
            [{"name": n} for n in inst_data.get("security_groups") or []])
    seed = base64.b64decode(inst_data["random_seed"])
    base.os = types.SimpleNamespace(urandom=lambda n: seed[:n], path=os.path)


def instance(d):
    ctxt = context.get_admin_context()
    inst = objects.Instance(context=ctxt)
    inst.uuid = d["uuid"]
    inst.hostname = d["hostname"]
    inst.display_name = d["display_name"]
    inst.user_data = d.get("user_data")
    inst.launch_index = d.get("launch_index", 0)
    inst.reservation_id = d["reservation_id"]
    inst.availability_zone = d.get("availability_zone")
    inst.project_id = d.get("project_id")
    inst.root_device_name = d.get("root_device_name")
    inst.default_ephemeral_device = None
    inst.default_swap_device = None
    inst.metadata = d.get("meta") or {}
    inst.system_metadata = {}
    inst.ec2_ids = objects.EC2Ids(instance_id=d["ec2_instance_id"],
                                  ami_id=d["ami_id"], kernel_id=None,
                                  ramdisk_id=None)
    key = d.get("key")
    inst.key_name = key["name"] if key else None
    inst.key_data = key["data"] if key else None
    inst.keypairs = objects.KeyPairList(objects=[objects.KeyPair(
        name=key["name"], type="ssh", public_key=key["data"])] if key else [])
    inst.device_metadata = None
    inst.numa_topology = None
    inst.flavor = objects.Flavor(name=d.get("flavor") or "")
    inst.info_cache = objects.InstanceInfoCache(network_info=m.NetworkInfo())
    return inst


def drive(inst_data, network_info, conf, vendor_file):
    for k, v in conf.items():
        CONF.set_override(k, v, group="api")
    CONF.set_override("vendordata_jsonfile_path", vendor_file, group="api")
    stub_services(inst_data)
    extra_md = {}
    if inst_data.get("admin_pass"):
        extra_md["admin_pass"] = inst_data["admin_pass"]
    files = [(p, base64.b64decode(c)) for p, c in inst_data.get("files", [])]
    md = base.InstanceMetadata(instance(inst_data), content=files,
                               extra_md=extra_md, network_info=network_info)
    tree = {}
    with tempfile.TemporaryDirectory() as tmp:
        cdb = configdrive.ConfigDriveBuilder(instance_md=md)
        cdb._write_md_files(tmp)  # the files Nova puts on the drive
        for root, _, names in os.walk(tmp):
            for n in names:
                p = os.path.join(root, n)
                with open(p, "rb") as f:
                    tree[os.path.relpath(p, tmp)] = (
                        base64.b64encode(f.read()).decode())
    for k in conf:
        CONF.clear_override(k, group="api")
    nd = netutils.get_network_metadata(network_info)
    return {"tree": tree,
            "network_data": base64.b64encode(
                json.dumps(nd).encode()).decode()}


def drives(spec):
    out = []
    with tempfile.NamedTemporaryFile("w", suffix=".json") as vf:
        for run in spec["runs"]:
            inst_data = copy.deepcopy(run.get("instance") or spec["instance"])
            vf.seek(0)
            vf.truncate()
            json.dump(inst_data.get("vendor_data") or {}, vf)
            vf.flush()
            # The case's network_info as the corpus wrote it, read back as
            # Nova reads its info cache.
            ni = m.NetworkInfo.hydrate(spec["network_info"][run["case"]])
            vifs = [v for i, v in enumerate(ni)
                    if i not in set(run.get("drop") or [])]
            out.append(drive(inst_data, m.NetworkInfo(vifs),
                             run.get("conf") or {}, vf.name))
    return out


def main():
    spec = json.load(sys.stdin)
    if sys.argv[1] == "corpus":
        json.dump(corpus(), sys.stdout)
    else:
        json.dump(drives(spec), sys.stdout)


if __name__ == "__main__":
    main()
