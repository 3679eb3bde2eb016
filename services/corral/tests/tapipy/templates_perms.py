"""Templates, tags, derived pods, permissions and credentials through the official Tapis
Python SDK (tapipy), unchanged.

Run by tests/e2e_tapipy.rs with CORRAL_URL, CORRAL_TOKEN (a tenant admin) and
CORRAL_TOKEN_OTHER (a plain user of the same tenant, CORRAL_OTHER_USER). Exits non-zero on
the first mismatch with a message saying what was expected.
"""
import os
import sys
import time

from tapipy.tapis import Tapis
from tapipy.errors import BaseTapyException, NotFoundError

base_url = os.environ["CORRAL_URL"]
admin = Tapis(base_url=base_url, tenant_id="dev", access_token=os.environ["CORRAL_TOKEN"])
other = Tapis(base_url=base_url, tenant_id="dev", access_token=os.environ["CORRAL_TOKEN_OTHER"])
other_user = os.environ["CORRAL_OTHER_USER"]


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def refused(call, what):
    """The call fails with an HTTP error (403 or 404); returns the exception."""
    try:
        call()
    except BaseTapyException as e:
        return e
    check(False, what)


def wait_status(pod_id, want, timeout=60):
    deadline = time.time() + timeout
    while True:
        pod = admin.pods.get_pod(pod_id=pod_id)
        if pod.status == want:
            return pod
        check(time.time() < deadline, f"{pod_id} reached {want} (last {pod.status})")
        time.sleep(0.1)


def perms_of(result):
    return list(result.permissions)


# Templates and tags.
tpl = admin.pods.add_template(template_id="tapitpl", description="made by tapipy")
check(tpl.template_id == "tapitpl", f"add_template returns the template: {tpl}")
check(admin.pods.get_template(template_id="tapitpl").description == "made by tapipy", "get_template")
check(any(t.template_id == "tapitpl" for t in admin.pods.list_templates()), "list_templates lists it")

definition = {
    "image": "corral-test/busybox",
    "command": ["sh", "-c", "echo from the template; exec httpd -f -p 8000 -h /www"],
    "networking": {"default": {"protocol": "http", "port": 8000}},
    "environment_variables": {"FROM": "template", "PW": "<<tapissecret_user_password>>"},
    "description": "template description",
}
tag = admin.pods.add_template_tag(
    template_id="tapitpl", pod_definition=definition, commit_message="first", tag="v1"
)
check(tag.tag == "v1" and tag.tag_timestamp, f"add_template_tag returns the tag with its timestamp: {tag}")
tags = admin.pods.list_template_tags(template_id="tapitpl")
check(any(t.tag == "v1" for t in tags), f"list_template_tags lists v1: {tags}")
got = admin.pods.get_template_tag(template_id="tapitpl", tag_id="v1")
got = got[0] if isinstance(got, list) else got
check(got.commit_message == "first", f"get_template_tag: {got}")
admin.pods.list_templates_and_tags()

# A pod from the template; its own field wins over the template's.
pod = admin.pods.create_pod(pod_id="tapifromtpl", template="tapitpl:v1", description="pod description")
check(pod.pod_id == "tapifromtpl", "create_pod(template=...) returns the pod")
pod = wait_status("tapifromtpl", "AVAILABLE")
check(pod.description == "pod description", f"the pod's field wins: {pod.description}")
check(pod.template and pod.template.startswith("tapitpl:v1"), f"the pinned template is stored: {pod.template}")
derived = admin.pods.get_derived_pod(pod_id="tapifromtpl")
# The spec's PodResponse: `result` is the merged pod itself.
check(
    getattr(derived, "image", None) == "corral-test/busybox",
    f"get_derived_pod returns the merged pod as its result (PodResponse), with the template's image: {derived}",
)
check(derived.environment_variables.FROM == "template", f"variables come from the template: {derived}")

creds = admin.pods.get_pod_credentials(pod_id="tapifromtpl")
check(creds.user_username == "tapifromtpl" and len(creds.user_password) >= 16, "get_pod_credentials")
check(creds.user_password not in str(derived), "the derived view holds no secret")

saved = admin.pods.save_pod_as_template_tag(
    pod_id_net="tapifromtpl", template_id="tapitpl", tag="v2", commit_message="from the pod"
)
check(saved.tag == "v2", f"save_pod_as_template_tag: {saved}")
admin.pods.restart_pod(pod_id="tapifromtpl", grab_latest_template_tag=True)
wait_status("tapifromtpl", "AVAILABLE")

# Pod permissions: the other user sees nothing until granted READ, which lets them read but
# not act; removing it hides the pod again.
refused(lambda: other.pods.get_pod(pod_id="tapifromtpl"), "no permission: get_pod refused")
check(all(p.pod_id != "tapifromtpl" for p in other.pods.list_pods()), "no permission: not listed")
perms = admin.pods.set_pod_permission(pod_id="tapifromtpl", user=other_user, level="READ")
check(f"{other_user}:READ" in perms_of(perms), f"set_pod_permission: {perms}")
perms = admin.pods.get_pod_permissions(pod_id="tapifromtpl")
check(f"{other_user}:READ" in perms_of(perms), f"get_pod_permissions: {perms}")
check(other.pods.get_pod(pod_id="tapifromtpl").pod_id == "tapifromtpl", "READ: get_pod works")
check(any(p.pod_id == "tapifromtpl" for p in other.pods.list_pods()), "READ: listed")
refused(lambda: other.pods.stop_pod(pod_id="tapifromtpl"), "READ: stop_pod refused")
refused(lambda: other.pods.get_pod_credentials(pod_id="tapifromtpl"), "READ: credentials refused")
perms = admin.pods.delete_pod_permission(pod_id="tapifromtpl", user=other_user)
check(all(not p.startswith(f"{other_user}:") for p in perms_of(perms)), f"delete_pod_permission: {perms}")
refused(lambda: other.pods.get_pod(pod_id="tapifromtpl"), "permission removed: get_pod refused")

# Template permissions.
refused(lambda: other.pods.get_template(template_id="tapitpl"), "no permission: get_template refused")
perms = admin.pods.set_template_permission(template_id="tapitpl", user=other_user, level="READ")
check(f"{other_user}:READ" in perms_of(perms), f"set_template_permission: {perms}")
perms = admin.pods.get_template_permissions(template_id="tapitpl")
check(f"{other_user}:READ" in perms_of(perms), f"get_template_permissions: {perms}")
check(other.pods.get_template(template_id="tapitpl").template_id == "tapitpl", "READ: get_template works")
refused(
    lambda: other.pods.add_template_tag(
        template_id="tapitpl", pod_definition=definition, commit_message="x", tag="v3"
    ),
    "READ: add_template_tag refused",
)
perms = admin.pods.delete_template_permission(template_id="tapitpl", user=other_user)
check(all(not p.startswith(f"{other_user}:") for p in perms_of(perms)), f"delete_template_permission: {perms}")
refused(lambda: other.pods.get_template(template_id="tapitpl"), "permission removed: get_template refused")

admin.pods.delete_pod(pod_id="tapifromtpl")
try:
    admin.pods.get_pod(pod_id="tapifromtpl")
    check(False, "a deleted pod is gone")
except NotFoundError:
    pass
admin.pods.delete_template(template_id="tapitpl")
try:
    admin.pods.get_template(template_id="tapitpl")
    check(False, "a deleted template is gone")
except NotFoundError:
    pass

print("tapipy templates and permissions: ok")
