#!/usr/bin/python3
"""Render network_data.json as cloud-init does in a guest.

Reads a JSON list of {"network_data": OBJECT, "macs": {MAC: NAME}} on
stdin and prints one {"v1": CONFIG, "netplan": TEXT, "error": TEXT} per
item: cloud-init's own convert_net_json (cloudinit.sources.helpers.openstack,
what its ConfigDrive and OpenStack datasources call) with the guest's NICs
given by MAC, and the netplan file cloud-init's netplan renderer writes
from it; or the error cloud-init raises.
"""
import copy
import json
import sys

from cloudinit.net import netplan, network_state
from cloudinit.sources.helpers import openstack


def render(item):
    nd = item["network_data"]
    if not nd:
        return {"v1": None, "netplan": None, "error": None}
    try:
        v1 = openstack.convert_net_json(copy.deepcopy(nd),
                                        known_macs=item.get("macs") or {})
        ns = network_state.parse_net_config_data(copy.deepcopy(v1))
        text = netplan.Renderer({"netplan_header": ""})._render_content(ns)
    except Exception as e:  # cloud-init refuses the data: say how
        return {"v1": None, "netplan": None,
                "error": "%s: %s" % (type(e).__name__, e)}
    return {"v1": v1, "netplan": text, "error": None}


def main():
    json.dump([render(i) for i in json.load(sys.stdin)], sys.stdout)


if __name__ == "__main__":
    main()
