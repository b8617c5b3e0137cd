"""Answer metadata requests with Nova's own handler.

Reads {"instances": {ADDRESS: DATA}, "requests": [REQUEST]} on stdin and
writes one {"status", "ctype", "body" (base64)} per request on stdout.

The requests go through nova.api.metadata.handler.MetadataRequestHandler
(its routing, Nova's InstanceMetadata.lookup, ec2_md_print, the password
handler) with the instance found by the request's source address, as Nova
does without the Neutron proxy. Only the data comes from the caller, so
that both services answer from the same inputs: the EC2 meta-data of each
version, meta_data.json of each OpenStack version, network_data.json,
vendor data and user-data, as the config drive has them.

Debian's Nova is 26 (Zed); its metadata code differs from Nova's master
in one respect that matters here: master knows the OpenStack version
2025-04-04 (Epoxy). It is added to Zed's list.
"""
import base64
import copy
import json
import logging as pylogging
import sys

import webob
from oslo_log import log as logging

import nova.conf
from nova.api.metadata import base, handler

CONF = nova.conf.CONF
logging.register_options(CONF)
CONF([], project="nova", default_config_files=[])
pylogging.disable(pylogging.CRITICAL)

if "2025-04-04" not in base.OPENSTACK_VERSIONS:
    base.OPENSTACK_VERSIONS.append("2025-04-04")


class Vendor:
    def __init__(self, data):
        self.data = data

    def get(self):
        return self.data


class Metadata(base.InstanceMetadata):
    """InstanceMetadata over given data: Nova's lookup, the caller's values."""

    def __init__(self, d):  # noqa: no super().__init__: no database
        self.d = d
        self.userdata_raw = (base64.b64decode(d["user_data"])
                             if d.get("user_data") is not None else None)
        self.password = d.get("password") or None
        self.content = {}
        self.files = []
        self.route_configuration = None
        self.network_metadata = d["network_data"]
        self.vendordata_providers = {"StaticJSON": Vendor(d["vendor"])}
        self.set_mimetype(base.MIME_TYPE_TEXT_PLAIN)

    def get_ec2_metadata(self, version):
        if version == "latest":
            version = base.VERSIONS[-1]
        if version not in base.VERSIONS:
            raise base.InvalidMetadataVersion(version)
        md = copy.deepcopy(self.d["ec2"][version])
        if "public-keys" in md:
            md["public-keys"]["0"]["_name"] = "0=" + self.d["key_name"]
        data = {"meta-data": md}
        if self.userdata_raw is not None:
            data["user-data"] = self.userdata_raw
        return data

    def _metadata_as_json(self, version, path):
        self.set_mimetype(base.MIME_TYPE_APPLICATION_JSON)
        return json.dumps(self.d["meta_data"][version]).encode()


def main():
    spec = json.load(sys.stdin)
    instances = {a: Metadata(d) for a, d in spec["instances"].items()}
    handler.MetadataRequestHandler.get_metadata_by_remote_address = (
        lambda self, address: instances.get(address))
    app = handler.MetadataRequestHandler()
    out = []
    for r in spec["requests"]:
        req = webob.Request.blank("/", method=r["method"],
                                  remote_addr=r["from"])
        req.path_info = r["path"]
        if r.get("body"):
            req.body = r["body"].encode()
        try:
            resp = req.get_response(app)
        except Exception:  # the WSGI server answers an app's exception so
            out.append({"status": 500, "ctype": "", "body": ""})
            continue
        out.append({"status": resp.status_int,
                    "ctype": resp.headers.get("Content-Type", ""),
                    "body": base64.b64encode(resp.body).decode()})
    json.dump(out, sys.stdout)


main()
