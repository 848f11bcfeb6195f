"""Bearer tokens: parsing API_TOKENS, refusing to start without them, matching tokens."""

import pytest

from app.core.security import DEVELOPMENT_TOKENS, Principal, TokenConfigError, TokenRegistry, parse_tokens


def test_tokens_parse_into_principals():
    entries = parse_tokens("alice:engineer:alice-secret-1, bob:client:bob-secret-22")
    assert entries == [("alice-secret-1", Principal("alice", "engineer")),
                       ("bob-secret-22", Principal("bob", "client"))]


@pytest.mark.parametrize("spec, message", [
    ("alice:engineer", "name:role:token"),
    ("alice:admin:long-enough-token", "unknown role 'admin'"),
    ("alice:client:short", "too short"),
    (" , ", "no entries"),
])
def test_bad_token_settings_are_refused(spec, message):
    with pytest.raises(TokenConfigError, match=message):
        parse_tokens(spec)


def test_without_tokens_the_service_refuses_to_start_unless_in_development():
    with pytest.raises(TokenConfigError, match="API_TOKENS is not set"):
        TokenRegistry.from_settings(None, dev_mode=False)
    registry = TokenRegistry.from_settings(None, dev_mode=True)
    assert registry.authenticate("dev-engineer-token") == Principal("dev-engineer", "engineer")
    assert "dev-client-token" in DEVELOPMENT_TOKENS


def test_configured_tokens_replace_the_development_ones():
    registry = TokenRegistry.from_settings("ops:operator:ops-token-123", dev_mode=True)
    assert registry.authenticate("ops-token-123") == Principal("ops", "operator")
    assert registry.authenticate("dev-engineer-token") is None
    assert registry.authenticate("") is None
    assert registry.authenticate("ops-token-12") is None
