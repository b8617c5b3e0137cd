#!/usr/bin/python3
"""Read a config drive tree with cloud-init's own ConfigDrive reader.

Usage: read_config_drive.py DIR [KNOWN_MACS_JSON]

Prints one JSON object: what cloud-init's read_config_drive returned
(user-data and file contents base64-encoded), the SSH keys as the
ConfigDrive datasource would install them, and network_data.json converted
to cloud-init's network configuration.
"""
import base64
import copy
import json
import sys

from cloudinit import sources
from cloudinit.sources.DataSourceConfigDrive import read_config_drive
from cloudinit.sources.helpers import openstack


def b64(v):
    if v is None:
        return None
    if isinstance(v, str):
        v = v.encode()
    return base64.b64encode(v).decode()


def main():
    d = sys.argv[1]
    macs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    res = read_config_drive(d)
    md = res["metadata"]
    out = {
        "version": res["version"],
        "userdata": b64(res.get("userdata")),
        "uuid": md.get("uuid"),
        "instance_id": md.get("instance-id"),
        "local_hostname": md.get("local-hostname"),
        "hostname": md.get("hostname"),
        "name": md.get("name"),
        "meta": md.get("meta"),
        "admin_pass": md.get("admin_pass"),
        "random_seed_len": len(md.get("random_seed", b"")),
        "keys": sources.normalize_pubkey_data(md.get("public_keys")),
        "files": {p: b64(c) for p, c in res.get("files", {}).items()},
        "vendordata": res.get("vendordata"),
        "networkdata": res.get("networkdata"),
        "ec2_metadata": res.get("ec2-metadata"),
        "network_config": None,
    }
    # convert_net_json changes its argument: convert a copy.
    if res.get("networkdata") is not None:
        out["network_config"] = openstack.convert_net_json(
            copy.deepcopy(res["networkdata"]), known_macs=macs)
    json.dump(out, sys.stdout, sort_keys=True, default=str)


if __name__ == "__main__":
    main()
