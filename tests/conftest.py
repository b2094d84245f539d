import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache root: no test sees another's parsed splits or features."""
    monkeypatch.setenv("FLAMINGO_EVAL_CACHE", str(tmp_path_factory.mktemp("cache")))
