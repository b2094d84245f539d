import pytest

from flamingo_eval.errors import ConfigError
from flamingo_eval.registry import Registry


def test_registry_resolves_lazily_and_suggests_on_typos():
    reg = Registry("thing", {"json-dumps": "json:dumps"})
    assert reg.get("json-dumps")({"a": 1}) == '{"a": 1}'
    with pytest.raises(ConfigError, match="unknown thing 'json-dump' \\(did you mean 'json-dumps'\\?\\)"):
        reg.get("json-dump")
