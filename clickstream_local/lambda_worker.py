"""Run a template's Lambda handler locally, each function in its own worker process.

A worker imports the handler from the function's ``CodeUri`` with the function's environment
(plus the local endpoint), like a warm Lambda container, and serves invocations over a pipe.
Exceptions and time-outs come back as function errors, exactly what the event-source runner
needs to apply retry, bisect and on-failure rules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import multiprocessing
import os
import random
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from clickstream_local.cfn import Resource, Template
from clickstream_local.emf import MetricsTap
from clickstream_local.faults import install_poison
from clickstream_local.iam import function_role_arn


@dataclass(frozen=True)
class LocalFunction:
    """What is needed to run one ``AWS::Serverless::Function`` here."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: float
    memory_mb: int
    layer_paths: tuple[Path, ...] = ()
    events: dict[str, Any] = field(default_factory=dict)
    role_arn: str = ""
    """The execution role: its credentials are the function's, as Lambda gives them."""

    def with_local_environment(self, overrides: Mapping[str, str]) -> LocalFunction:
        """The function with local endpoint values for the variables it declares."""
        environment = {key: overrides.get(key, value) for key, value in self.environment.items()}
        return dataclasses.replace(self, environment=environment)

    @classmethod
    def from_template(cls, template: Template, resource: Resource, root: Path) -> LocalFunction:
        """Build from a resolved function resource; ``root`` is the template's folder."""
        properties = resource.properties
        variables = properties.get("Environment", {}).get("Variables", {})
        layer_paths = []
        for layer_arn in properties.get("Layers", []):
            layer = template.find_by_arn(layer_arn)
            if layer is not None and isinstance(layer.properties.get("ContentUri"), str):
                layer_paths.append(root / layer.properties["ContentUri"] / "python")
        return cls(
            logical_id=resource.logical_id,
            name=resource.physical_id,
            arn=template.arn(resource.logical_id),
            code_dir=root / properties["CodeUri"],
            handler=properties["Handler"],
            environment={key: str(value) for key, value in variables.items()},
            timeout_seconds=float(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            layer_paths=tuple(layer_paths),
            events=properties.get("Events", {}),
            role_arn=function_role_arn(template, resource),
        )


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation: a payload, or a function error."""

    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0
    metrics: tuple[dict[str, Any], ...] = ()
    """The Embedded Metric Format documents the function printed: its CloudWatch metrics."""


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, function: LocalFunction, request_id: str, deadline: float) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.time()) * 1000))


def load_handler(function: LocalFunction) -> Callable[[Any, Any], Any]:
    """Import ``module.attr`` from the function's code folder, under a unique module name."""
    module_name, attribute = function.handler.rsplit(".", 1)
    source = function.code_dir / (module_name.replace(".", "/") + ".py")
    for path in (*function.layer_paths, function.code_dir):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    spec = importlib.util.spec_from_file_location(f"_lambda_{function.logical_id}", source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import handler module {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def _worker_main(
    connection: Connection,
    function: LocalFunction,
    environment: dict[str, str],
    log_file: Path | None = None,
) -> None:
    """Entry point of a worker process: load the handler once, then serve invocations.

    The function's log output (stdout) goes to the worker's stderr, or to ``log_file``, as Lambda
    sends it to CloudWatch Logs rather than to the caller; its EMF metrics also come back with
    each reply.
    """
    sys.stdout.flush()
    if log_file is not None:
        with log_file.open("a") as log:
            os.dup2(log.fileno(), sys.stderr.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    tap = MetricsTap(sys.stdout)
    sys.stdout = tap  # type: ignore[assignment]
    os.environ.update(environment)
    os.environ.update(function.environment)
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", function.name)
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(function.memory_mb))
    try:
        handler = load_handler(function)
        if function.layer_paths:
            install_poison()  # test-only, when the environment names poison events
    except Exception as error:  # an import error is an init error of every invocation
        connection.send(("init_error", type(error).__name__, str(error)))
        return
    connection.send(("ready",))
    while True:
        message = connection.recv()
        if message is None:
            return
        request_id, event, deadline = message
        try:
            result = handler(event, LambdaContext(function, request_id, deadline))
            connection.send(("ok", result, tap.take()))
        except Exception as error:
            traceback.print_exc()
            connection.send(("error", type(error).__name__, str(error), tap.take()))


class WorkerInvoker:
    """Invokes one function in a dedicated process, restarting it after a crash or time-out."""

    def __init__(
        self,
        function: LocalFunction,
        environment: Mapping[str, str],
        log_file: Path | None = None,
    ) -> None:
        self.function = function
        self.environment = dict(environment)
        self.log_file = log_file
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._connection: Connection | None = None

    def _start(self) -> Connection:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_worker_main,
            args=(child, self.function, self.environment, self.log_file),
            name=f"lambda-{self.function.name}",
            daemon=True,
        )
        self._process.start()
        child.close()
        if not parent.poll(60):
            self.close()
            raise RuntimeError(f"{self.function.name}: worker did not start within 60 s")
        status = parent.recv()
        if status[0] != "ready":
            self.close()
            raise RuntimeError(f"{self.function.name}: init error {status[1]}: {status[2]}")
        self._connection = parent
        return parent

    def invoke(self, event: Any) -> Invocation:
        """Run the handler on ``event``; errors, crashes and time-outs become function errors."""
        started = time.perf_counter()
        try:
            connection = self._connection or self._start()
        except RuntimeError as error:
            return Invocation(False, error_type="InitError", error_message=str(error))
        deadline = time.time() + self.function.timeout_seconds
        connection.send((str(uuid.uuid4()), event, deadline))
        elapsed = lambda: (time.perf_counter() - started) * 1000  # noqa: E731
        try:
            ready = connection.poll(self.function.timeout_seconds)
            reply = connection.recv() if ready else None
        except (EOFError, OSError):
            self.close()
            return Invocation(False, error_type="Runtime.ExitError", error_message="worker died")
        if reply is None:
            self.close()
            return Invocation(
                False,
                error_type="Sandbox.Timedout",
                error_message=f"Task timed out after {self.function.timeout_seconds:.2f} seconds",
                duration_ms=elapsed(),
            )
        if reply[0] == "ok":
            return Invocation(True, payload=reply[1], duration_ms=elapsed(), metrics=reply[2])
        return Invocation(
            False,
            error_type=reply[1],
            error_message=reply[2],
            duration_ms=elapsed(),
            metrics=reply[3],
        )

    def close(self) -> None:
        """Stop the worker process."""
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.send(None)
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=2)
            self._process = None


class InProcessInvoker:
    """Invokes a handler callable in this process (benchmarks and focused tests)."""

    def __init__(self, handler: Callable[[Any, Any], Any], function: LocalFunction) -> None:
        self.handler = handler
        self.function = function

    def invoke(self, event: Any) -> Invocation:
        """Call the handler; an exception becomes a function error."""
        started = time.perf_counter()
        context = LambdaContext(self.function, str(uuid.uuid4()), time.time() + 900)
        try:
            payload = self.handler(event, context)
        except Exception as error:
            return Invocation(False, error_type=type(error).__name__, error_message=str(error))
        return Invocation(True, payload=payload, duration_ms=(time.perf_counter() - started) * 1000)

    def close(self) -> None:
        """Nothing to release."""


class FaultInjectingInvoker:
    """Fails a share of invocations, half before and half after the handler runs.

    A failure after the handler is the hard case for exactly-once: the state is committed but
    the runner sees an error and delivers the batch again. Used to test the consumers.
    """

    def __init__(self, inner: WorkerInvoker, rate: float, seed: int) -> None:
        self.inner = inner
        self.rate = rate
        self._random = random.Random(seed)
        self.injected = 0

    def invoke(self, event: Any) -> Invocation:
        """Invoke, or pretend the function failed (before or after running it)."""
        roll = self._random.random()
        if roll < self.rate / 2:
            self.injected += 1
            return Invocation(False, error_type="InjectedFault", error_message="before the handler")
        outcome = self.inner.invoke(event)
        if roll < self.rate:
            self.injected += 1
            return Invocation(
                False,
                error_type="InjectedFault",
                error_message="after the handler",
                metrics=outcome.metrics,
            )
        return outcome

    def close(self) -> None:
        """Stop the worker."""
        self.inner.close()
