"""Headers that tell clients how to behave after an error."""

from api.errors import ServiceUnavailable, UpstreamError, classify
from routing_platform.engine.errors import AllProvidersFailedError


def test_an_upstream_failure_tells_the_sdk_not_to_retry():
    """The platform already retried and fell back: a 502 says x-should-retry: false, so the
    official SDKs do not run (and record) the call a second time on their own."""
    error, _ = classify(AllProvidersFailedError([]))
    assert isinstance(error, UpstreamError) and error.status_code == 502
    assert error.headers["x-should-retry"] == "false"


def test_every_503_says_when_to_retry():
    """A 503 without its own wait gets Retry-After 5; one that names its own keeps it."""
    assert ServiceUnavailable("down").headers["Retry-After"] == "5"
    assert ServiceUnavailable("down", headers={"Retry-After": "30"}).headers["Retry-After"] == "30"
