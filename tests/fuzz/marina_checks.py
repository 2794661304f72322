"""Schemathesis checks for Marina's API fuzz pass (loaded through
SCHEMATHESIS_HOOKS=marina_checks by crates/marina/tests/fuzz_api.rs).

`no_server_error`: no response may be a 5xx, with the exceptions the
replication-manager seed prescribes and the OpenAPI document declares for a
cluster the caller does not have: `500 "No Cluster"` on `/api/clusters/...`
and `500 "No cluster!"` on its health checks `/clusters/.../servers/...`.
Dropped connections are reported by Schemathesis itself as errors.
"""

import schemathesis


@schemathesis.check
def no_server_error(ctx, response, case):
    if response.status_code < 500:
        return None
    body = response.text.strip().strip('"')
    if response.status_code == 500 and (
        (case.path.startswith("/api/clusters") and body == "No Cluster")
        or (case.path.startswith("/clusters/") and body == "No cluster!")
    ):
        return None
    raise AssertionError(
        f"{response.status_code} on {case.method} {case.formatted_path}: {response.text[:300]}"
    )
