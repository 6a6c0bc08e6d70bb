import pytest

from manverify.bench import Setup


@pytest.fixture(scope="session")
def setup():
    return Setup(batch=256)
