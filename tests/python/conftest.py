"""pytest wiring: --target picks the server under test (corral or zookeeper).

Fixtures:
  server          a module-scoped server with DEFAULT_CONFIG (shared by a module's tests)
  server_factory  starts extra servers with a given config; all stopped at test end
  target          the --target string
"""

import faulthandler
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import servers  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--target", default=os.environ.get("CORRAL_TEST_TARGET", "corral"),
                     choices=["corral", "zookeeper"],
                     help="server under test (default corral: target/debug/corral or $CORRAL_BIN)")


TEST_TIMEOUT = int(os.environ.get("CORRAL_TEST_TIMEOUT", "120"))


class TestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A hung server must fail one test, not stall the suite: SIGALRM after
    CORRAL_TEST_TIMEOUT seconds (default 120) raises in the test."""

    def on_alarm(signum, frame):
        faulthandler.dump_traceback(file=sys.stderr, all_threads=False)
        raise TestTimeout(f"test exceeded {TEST_TIMEOUT}s (CORRAL_TEST_TIMEOUT)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def target(request):
    return request.config.getoption("--target")


def _factory(target):
    started = []

    def start(config=None, target_override=None, name=None):
        s = servers.Server(target_override or target, config, name=name)
        started.append(s)
        s.start()
        return s

    return start, started


@pytest.fixture
def server_factory(target):
    start, started = _factory(target)
    yield start
    for s in started:
        s.cleanup()


@pytest.fixture(scope="module")
def module_server_factory(target):
    start, started = _factory(target)
    yield start
    for s in started:
        s.cleanup()


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory()
