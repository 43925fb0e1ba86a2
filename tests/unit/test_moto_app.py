"""The local endpoint's request serialization, on a fake WSGI application."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clickstream_local.iam_endpoint import IamEnforcement, audited_resource
from clickstream_local.moto_app import AtomicRequests, dynamodb_tables, lock_names, signed_service


def signed(service: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A WSGI environ signed with SigV4 for ``service``, with ``body`` as its JSON body."""
    payload = b"" if body is None else json.dumps(body).encode()
    return {
        "HTTP_AUTHORIZATION": (
            "AWS4-HMAC-SHA256 Credential=testing/20261128/us-east-1/"
            f"{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
        ),
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
    }


class OverlapRecorder:
    """A WSGI app that records the most requests it ever served at once.

    With ``meet`` above 1, each request waits inside the app until ``meet`` requests are in it
    together (or ``patience`` seconds pass, for requests that can never meet): requests allowed
    to run side by side then certainly overlap, whatever the machine's load. With ``meet`` 1,
    each request stays a moment, so requests that would overlap get the chance to.
    """

    def __init__(self, meet: int = 1, patience: float = 10.0) -> None:
        self.meet = meet
        self.patience = patience
        self.active = 0
        self.most_active = 0
        self.bodies: list[bytes] = []
        self._changed = threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._changed:
            if "wsgi.input" in environ:
                self.bodies.append(environ["wsgi.input"].read())
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self._changed.notify_all()
            if self.meet > 1:
                self._changed.wait_for(lambda: self.most_active >= self.meet, self.patience)
        if self.meet == 1:
            time.sleep(0.05)
        with self._changed:
            self.active -= 1
        start_response("200 OK", [])
        return [b"part one, ", b"part two"]


def serve_at_once(app: AtomicRequests, environs: list[dict[str, Any]]) -> list[Any]:
    """Send every request at once, each from its own thread."""
    with ThreadPoolExecutor(max_workers=len(environs)) as pool:
        return list(pool.map(lambda environ: app(environ, lambda *_: None), environs))


def put(table: str) -> dict[str, Any]:
    """A DynamoDB PutItem body."""
    return {"TableName": table, "Item": {"pk": {"S": "a"}}}


def test_the_service_comes_from_the_credential_scope() -> None:
    assert signed_service(signed("dynamodb")) == "dynamodb"
    assert signed_service(signed("kinesis")) == "kinesis"
    assert signed_service({}) is None
    assert signed_service({"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}) is None


def test_dynamodb_requests_naming_no_table_run_one_at_a_time_and_keep_their_body() -> None:
    # GIVEN the middleware around an app that notes overlapping requests
    recorder = OverlapRecorder()
    app = AtomicRequests(recorder)
    # WHEN four DynamoDB requests arrive at once
    bodies = serve_at_once(app, [signed("dynamodb") for _ in range(4)])
    # THEN they never overlapped, and each response body is whole
    assert recorder.most_active == 1
    assert bodies == [[b"part one, part two"]] * 4


def test_s3_and_unsigned_requests_stay_concurrent() -> None:
    for make_environ in (lambda: signed("s3"), dict):
        # GIVEN the middleware around an app where requests wait to meet all four together
        recorder = OverlapRecorder(meet=4)
        # WHEN four such requests arrive at once
        serve_at_once(AtomicRequests(recorder), [make_environ() for _ in range(4)])
        # THEN they ran side by side
        assert recorder.most_active == 4


def test_the_tables_come_from_the_request_body() -> None:
    transaction = {
        "TransactItems": [
            {"Put": put("state")},
            {"ConditionCheck": {"TableName": "arn:aws:dynamodb:us-east-1:1:table/checkpoints"}},
            {"Update": {"TableName": "state", "Key": {}}},
        ]
    }
    assert dynamodb_tables(json.dumps(transaction).encode()) == ["checkpoints", "state"]
    assert dynamodb_tables(json.dumps({"RequestItems": {"b": [], "a": []}}).encode()) == ["a", "b"]
    assert dynamodb_tables(json.dumps(put("results")).encode()) == ["results"]
    assert dynamodb_tables(b"{}") == []
    assert dynamodb_tables(b"not json") == []


def test_a_chunked_body_is_read_to_its_end_and_put_back() -> None:
    # GIVEN a DynamoDB request whose body came chunked, without a Content-Length
    environ = signed("dynamodb", put("state"))
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    # WHEN its locks are named
    names = lock_names("dynamodb", environ)
    # THEN its table was found, and the application still reads the whole body
    assert names == ["dynamodb/state"]
    assert environ["wsgi.input"].read() == json.dumps(put("state")).encode()


def test_requests_on_one_table_run_one_at_a_time_and_see_their_body() -> None:
    # GIVEN the middleware around an app that notes overlapping requests
    recorder = OverlapRecorder()
    app = AtomicRequests(recorder)
    # WHEN puts and a transaction that writes the same table arrive at once
    transaction = {"TransactItems": [{"Put": put("other")}, {"Put": put("state")}]}
    requests = [signed("dynamodb", put("state")) for _ in range(3)]
    serve_at_once(app, [*requests, signed("dynamodb", transaction)])
    # THEN they never overlapped, and the application read each body whole
    assert recorder.most_active == 1
    assert sorted(recorder.bodies) == sorted(
        [json.dumps(put("state")).encode()] * 3 + [json.dumps(transaction).encode()]
    )


def test_requests_on_different_tables_run_side_by_side() -> None:
    # GIVEN the middleware around an app where requests wait to meet all four together
    recorder = OverlapRecorder(meet=4)
    app = AtomicRequests(recorder)
    # WHEN requests on four different tables arrive at once
    serve_at_once(app, [signed("dynamodb", put(f"table-{n}")) for n in range(4)])
    # THEN they ran side by side
    assert recorder.most_active == 4


def test_different_services_do_not_wait_for_each_other() -> None:
    # GIVEN the middleware around an app where requests wait to meet both together
    recorder = OverlapRecorder(meet=2)
    app = AtomicRequests(recorder)
    # WHEN a DynamoDB and a Kinesis request arrive at once
    bodies = serve_at_once(app, [signed("dynamodb"), signed("kinesis")])
    # THEN they ran side by side, each still whole
    assert recorder.most_active == 2
    assert bodies == [[b"part one, part two"]] * 2


# ---------------------------------------------------------------------------- IAM enforcement


def with_key(environ: dict[str, Any], access_key_id: str) -> dict[str, Any]:
    """``environ`` signed with ``access_key_id`` instead."""
    authorization = environ["HTTP_AUTHORIZATION"].replace(
        "Credential=testing/", f"Credential={access_key_id}/"
    )
    return {**environ, "HTTP_AUTHORIZATION": authorization}


class Recorder:
    """A WSGI app that answers 200 and counts the requests that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.calls += 1
        start_response("200 OK", [])
        return [b"{}"]


def call(app: IamEnforcement, environ: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    """Serve ``environ``; the status, headers and body."""
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


def test_the_administrator_reaches_every_service_and_strangers_none() -> None:
    # GIVEN the enforcing middleware in front of an app
    inner = Recorder()
    app = IamEnforcement(inner)
    request = {**signed("dynamodb", put("t")), "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}
    # WHEN the administrator, an unknown key and an unsigned request call it
    admin = call(app, request)
    stranger = call(app, with_key({**request, "wsgi.input": io.BytesIO(b"{}")}, "AKIAUNKNOWN"))
    unsigned = call(app, {"PATH_INFO": "/", "wsgi.input": io.BytesIO(b"")})
    # THEN only the administrator gets through; the stranger gets AWS's JSON error
    assert admin[0] == "200 OK"
    assert inner.calls == 1
    assert stranger[0].startswith("400")
    assert json.loads(stranger[2])["__type"].endswith("UnrecognizedClientException")
    assert unsigned[0].startswith("403")


def test_roles_are_registered_and_decisions_audited_through_the_control_api() -> None:
    # GIVEN the middleware and one role's policies posted to its control API
    app = IamEnforcement(Recorder())
    role = {
        "arn": "arn:aws:iam::123456789012:role/r",
        "logical_id": "R",
        "documents": [{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}],
    }
    body = json.dumps({"roles": [role]}).encode()
    registered = call(
        app,
        {
            "PATH_INFO": "/_clickstream/iam/roles",
            "REQUEST_METHOD": "POST",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        },
    )
    # WHEN the audit is read
    audit = call(app, {"PATH_INFO": "/_clickstream/iam/audit", "REQUEST_METHOD": "GET"})
    # THEN the role is known and the audit lists it, with no decision yet
    assert json.loads(registered[2]) == {"roles": [role["arn"]]}
    assert json.loads(audit[2]) == {"decisions": [], "roles": [role]}


def test_the_audit_counts_objects_by_their_first_two_folders() -> None:
    # GIVEN object, folder-key and other resources
    # WHEN they are put in the audit's terms
    # THEN objects collapse to their first two folders at most, everything else stays as it is
    assert audited_resource("arn:aws:s3:::lake/quarantine/window-counter/2026/x") == (
        "arn:aws:s3:::lake/quarantine/window-counter/*"
    )
    assert audited_resource("arn:aws:s3:::lake/_glue/code.zip") == "arn:aws:s3:::lake/_glue/*"
    assert audited_resource("arn:aws:s3:::lake/rawdata") == "arn:aws:s3:::lake/rawdata"
    assert audited_resource("arn:aws:s3:::lake") == "arn:aws:s3:::lake"
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    assert audited_resource(table) == table
