"""Engine test fixtures: a loopback HTTP upstream and a fake sleep that records delays."""

from __future__ import annotations

import pytest

from tests.engine.upstream import Upstream


@pytest.fixture
def upstream():
    server = Upstream().start()
    yield server
    server.stop()


class RecordingSleep:
    """Stands in for asyncio.sleep: records each backoff delay without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def recording_sleep():
    return RecordingSleep()
