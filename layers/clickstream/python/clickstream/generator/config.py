"""Generator settings (environment plus invoking event) and :func:`run_generator`.

The Lambda handler and the local CLI both build a :class:`GeneratorConfig` and call
:func:`run_generator`, so they generate and send in exactly the same way.

Settings, from lowest to highest precedence: defaults, environment variables, top-level keys of
the invoking event, keys of its ``detail`` object.

| key        | environment variable          | default   | meaning                               |
|------------|-------------------------------|-----------|---------------------------------------|
| profile    | GENERATOR_PROFILE             | classic   | classic or realistic                  |
| mode       | GENERATOR_MODE                | count     | count or rate                         |
| count      | GENERATOR_COUNT               | 600       | events per run, count mode            |
| rate       | GENERATOR_RATE                | 10        | events per second of event time       |
| duration   | GENERATOR_DURATION_SECONDS    | 60        | seconds of paced sending, rate mode   |
| seed       | GENERATOR_SEED                | from time | milliseconds since the epoch of `now` |

``STREAM_NAME`` (environment only) is required.

- **count** mode sends ``count`` events at once; their timestamps cover the ``count / rate``
  seconds that end at ``now``, and none is later than ``now``.
- **rate** mode sends events paced in real time from ``now`` for ``duration`` seconds, so the run
  lasts about ``duration`` seconds: it must fit in the function timeout (the handler checks).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickstream.core.events import Event
from clickstream.core.retry import RetryPolicy
from clickstream.generator.producer import DEFAULT_RETRY_POLICY, SendReport, send_events
from clickstream.generator.profiles import PROFILES, generate
from clickstream.ports import RecordStream

MODES: tuple[str, ...] = ("count", "rate")
DEFAULT_PROFILE = "classic"
DEFAULT_MODE = "count"
DEFAULT_COUNT = 600
DEFAULT_RATE = 10.0
DEFAULT_DURATION_SECONDS = 60.0

ENVIRONMENT_VARIABLES: dict[str, str] = {
    "profile": "GENERATOR_PROFILE",
    "mode": "GENERATOR_MODE",
    "count": "GENERATOR_COUNT",
    "rate": "GENERATOR_RATE",
    "duration": "GENERATOR_DURATION_SECONDS",
    "seed": "GENERATOR_SEED",
}
"""Setting name -> environment variable; the invoking event uses the setting names."""


@dataclass(frozen=True)
class GeneratorConfig:
    """One generator run. Invalid values raise ValueError."""

    stream_name: str
    seed: int
    profile: str = DEFAULT_PROFILE
    mode: str = DEFAULT_MODE
    count: int = DEFAULT_COUNT
    rate: float = DEFAULT_RATE
    duration: float = DEFAULT_DURATION_SECONDS

    def __post_init__(self) -> None:
        if not self.stream_name.strip():
            raise ValueError("stream_name must not be empty")
        if self.profile not in PROFILES:
            raise ValueError(f"profile: {self.profile!r} is not one of {', '.join(PROFILES)}")
        if self.mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if self.count < 1:
            raise ValueError(f"count: must be at least 1, got {self.count}")
        if not math.isfinite(self.rate) or self.rate <= 0:
            raise ValueError(
                f"rate: must be a positive number of events per second, got {self.rate}"
            )
        if not math.isfinite(self.duration) or self.duration <= 0:
            raise ValueError(f"duration: must be a positive number of seconds, got {self.duration}")

    @classmethod
    def from_sources(
        cls, env: Mapping[str, str], event: Mapping[str, Any], now: datetime
    ) -> GeneratorConfig:
        """Read the settings from the environment and the invoking event (see the module doc)."""
        stream_name = env.get("STREAM_NAME", "").strip()
        if not stream_name:
            raise ValueError("STREAM_NAME is not set: name the Kinesis stream to write to")
        detail = event.get("detail") or {}
        if not isinstance(detail, Mapping):
            raise ValueError(f"event detail must be an object, got {type(detail).__name__}")

        def setting(name: str) -> tuple[Any, str] | None:
            if detail.get(name) is not None:
                return detail[name], f"detail.{name}"
            if event.get(name) is not None:
                return event[name], name
            variable = ENVIRONMENT_VARIABLES[name]
            if env.get(variable, "").strip():
                return env[variable], variable
            return None

        profile = setting("profile")
        mode = setting("mode")
        count = setting("count")
        rate = setting("rate")
        duration = setting("duration")
        seed = setting("seed")
        return cls(
            stream_name=stream_name,
            seed=_integer(*seed) if seed else seed_from_time(now),
            profile=_name(*profile) if profile else DEFAULT_PROFILE,
            mode=_name(*mode) if mode else DEFAULT_MODE,
            count=_integer(*count) if count else DEFAULT_COUNT,
            rate=_number(*rate) if rate else DEFAULT_RATE,
            duration=_number(*duration) if duration else DEFAULT_DURATION_SECONDS,
        )

    def as_dict(self) -> dict[str, Any]:
        """The settings, for logs."""
        return dataclasses.asdict(self)


def seed_from_time(now: datetime) -> int:
    """The default seed: whole milliseconds since the epoch."""
    return int(now.timestamp() * 1000)


def count_mode_events(config: GeneratorConfig, now: datetime) -> list[Event]:
    """``config.count`` events covering the ``count / rate`` seconds that end at ``now``.

    A realistic run may take a little longer than ``count / rate`` seconds of event time; it
    is then shifted back so that its last event is exactly at ``now``.
    """
    start = now - timedelta(seconds=config.count / config.rate)
    events = list(
        generate(
            config.profile, seed=config.seed, start=start, rate=config.rate, count=config.count
        )
    )
    if events and events[-1].trans_timestamp > now:
        shift = events[-1].trans_timestamp - now
        events = [
            dataclasses.replace(event, trans_timestamp=event.trans_timestamp - shift)
            for event in events
        ]
    return events


def run_generator(
    config: GeneratorConfig,
    stream: RecordStream,
    *,
    now: datetime,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[SendReport], None] | None = None,
    time_budget: float | None = None,
) -> SendReport:
    """Generate and send one run. ``time_budget`` (seconds) bounds a rate-mode duration."""
    if config.mode == "count":
        return send_events(
            count_mode_events(config, now),
            stream,
            policy=policy,
            sleep=sleep,
            on_progress=on_progress,
        )
    if time_budget is not None and config.duration > time_budget:
        raise ValueError(
            f"duration: {config.duration:g} s of paced sending does not fit in the "
            f"{max(time_budget, 0.0):g} s left; lower it or raise the function timeout"
        )
    events = generate(
        config.profile, seed=config.seed, start=now, rate=config.rate, duration=config.duration
    )
    return send_events(
        events,
        stream,
        pace=True,
        policy=policy,
        clock=clock,
        sleep=sleep,
        on_progress=on_progress,
    )


def _name(value: Any, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{source}: expected a name, got {value!r}")
    return value.strip().lower()


def _integer(value: Any, source: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{source}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{source}: expected an integer, got {value!r}")


def _number(value: Any, source: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{source}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"{source}: expected a number, got {value!r}") from None
    else:
        raise ValueError(f"{source}: expected a number, got {value!r}")
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{source}: must be a positive number, got {value!r}")
    return number
