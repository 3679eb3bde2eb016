"""Drives Corral with the official Tapis Python SDK (tapipy), unchanged.

Run by tests/e2e_tapipy.rs with CORRAL_URL and CORRAL_TOKEN set. Exits non-zero on the
first mismatch with a message saying what was expected.
"""
import os
import sys
import time

from tapipy.tapis import Tapis
from tapipy.errors import BaseTapyException, NotFoundError, BadRequestError

base_url = os.environ["CORRAL_URL"]
token = os.environ["CORRAL_TOKEN"]

# tenant_id avoids tapipy's tenant lookups; the token is only decoded client-side.
t = Tapis(base_url=base_url, tenant_id="dev", access_token=token)


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def wait_status(pod_id, want, timeout=60):
    deadline = time.time() + timeout
    while True:
        pod = t.pods.get_pod(pod_id=pod_id)
        if pod.status == want:
            return pod
        check(time.time() < deadline, f"{pod_id} reached {want} (last {pod.status})")
        time.sleep(0.1)


pod = t.pods.create_pod(
    pod_id="tapipy1",
    image="corral-test/busybox",
    command=["sh", "-c", "echo tapipy says hi; exec httpd -f -p 8000 -h /www"],
    networking={"default": {"protocol": "http", "port": 8000}},
    description="created by tapipy",
)
check(pod.pod_id == "tapipy1", "create_pod returns the pod")
check(pod.status == "REQUESTED", f"new pod is REQUESTED (got {pod.status})")
check(pod.networking.default.port == 8000, "networking round-trips")

pod = wait_status("tapipy1", "AVAILABLE")
check(pod.description == "created by tapipy", "description kept")

pods = t.pods.list_pods()
check(any(p.pod_id == "tapipy1" for p in pods), "list_pods lists the pod")

deadline = time.time() + 20
while True:
    logs = t.pods.get_pod_logs(pod_id="tapipy1")
    if "tapipy says hi" in (logs.logs or ""):
        break
    check(time.time() < deadline, "container output reaches get_pod_logs")
    time.sleep(0.2)
check(len(logs.action_logs) > 0, "action logs present")

updated = t.pods.update_pod(pod_id="tapipy1", description="changed")
check(updated.description == "changed", "update_pod changes the description")

t.pods.stop_pod(pod_id="tapipy1")
wait_status("tapipy1", "STOPPED")
t.pods.start_pod(pod_id="tapipy1")
wait_status("tapipy1", "AVAILABLE")
t.pods.restart_pod(pod_id="tapipy1")
wait_status("tapipy1", "AVAILABLE")

try:
    t.pods.create_pod(pod_id="BAD", image="corral-test/busybox")
    check(False, "an invalid pod id is refused")
except BadRequestError as e:
    check("pod_id" in str(e), f"the 400 names the field: {e}")

try:
    t.pods.create_pod(pod_id="tapipy1", image="corral-test/busybox")
    check(False, "a duplicate pod id is refused")
except BaseTapyException as e:
    check("already" in str(e).lower() or "exists" in str(e).lower(), f"the 409 says why: {e}")

t.pods.delete_pod(pod_id="tapipy1")
try:
    t.pods.get_pod(pod_id="tapipy1")
    check(False, "a deleted pod is gone")
except NotFoundError:
    pass

print("tapipy smoke: ok")
