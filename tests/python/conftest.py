"""pytest wiring: --target picks the server under test (corral or zookeeper).

Fixtures:
  server          a module-scoped server with DEFAULT_CONFIG (shared by a module's tests)
  server_factory  starts extra servers with a given config; all stopped at test end
  target          the --target string
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import servers  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--target", default=os.environ.get("CORRAL_TEST_TARGET", "corral"),
                     choices=["corral", "zookeeper"],
                     help="server under test (default corral: target/debug/corral or $CORRAL_BIN)")


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
