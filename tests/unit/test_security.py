"""Bearer tokens: parsing API_TOKENS with client scopes, refusing bad or published tokens at start,
matching tokens by digest; the sidecar tokens daprd and the app share."""

import pytest
from pydantic import SecretStr

from app.api.sidecar_auth import SidecarTokenError, check_sidecar_tokens
from app.core.config import Settings
from app.core.security import (DEVELOPMENT_TOKENS, Principal, TokenConfigError, TokenRegistry, parse_tokens,
                               token_digest)

ALICE = "alice-secret-token-1"
BOB = "bob-secret-token-22"


def test_tokens_parse_into_principals_with_and_without_a_scope():
    entries = parse_tokens(f"alice:engineer:{ALICE}, bob:client:{BOB}, portal:client:portal-token-0001:CUST001|CUST002")
    assert entries == [(ALICE, Principal("alice", "engineer")),
                       (BOB, Principal("bob", "client")),
                       ("portal-token-0001", Principal("portal", "client", frozenset({"CUST001", "CUST002"})))]


def test_a_scoped_client_acts_only_for_its_customers_and_an_unscoped_one_for_all():
    scoped = Principal("portal", "client", frozenset({"CUST001"}))
    integration = Principal("crm", "client")
    engineer = Principal("alice", "engineer")
    assert scoped.may_act_for("CUST001") and not scoped.may_act_for("CUST002") and not scoped.may_act_for(None)
    assert integration.may_act_for("CUST002") and integration.may_act_for("CUST999")
    assert engineer.may_act_for("CUST002")
    assert scoped.is_scoped and not integration.is_scoped


def test_the_startup_description_names_scopes_and_never_the_token():
    entries = parse_tokens(f"crm:client:{BOB},portal:client:portal-token-0001:CUST002|CUST001,ops:operator:{ALICE}")
    described = [p.describe() for _, p in entries]
    assert described == ["crm (client, trusted integration: files for every customer)",
                         "portal (client, customers CUST001|CUST002)",
                         "ops (operator, every customer)"]
    assert not any(token in text for text in described for token in (BOB, ALICE, "portal-token-0001"))


@pytest.mark.parametrize("spec, message", [
    ("alice:engineer", "must be name:role:token"),
    ("alice:engineer:a:b:c", "must be name:role:token"),
    ("alice::some-long-token-value", "must be name:role:token"),
    (f"alice:admin:{ALICE}", "unknown role 'admin'"),
    ("alice:client:short-token", "too short"),
    (f"al ice:client:{ALICE}", "name 'al ice'"),
    (f"alice:engineer:{ALICE}:CUST001", "client entries only"),
    (f"alice:client:{ALICE}:", "customer ids separated by '|'"),
    (f"alice:client:{ALICE}:CUST001|../x", "not '../x'"),
    (f"alice:client:{ALICE},alice:engineer:{BOB}", "names 'alice' twice"),
    (f"alice:client:{ALICE},bob:engineer:{ALICE}", "also another entry's token"),
    (" , ", "no entries"),
])
def test_bad_token_settings_are_refused(spec, message):
    with pytest.raises(TokenConfigError, match=message):
        parse_tokens(spec)


def test_error_messages_never_carry_a_token():
    for spec in (f"alice:client:{ALICE},bob:engineer:{ALICE}", f"alice:admin:{ALICE}", f"x:engineer:{ALICE}:C1"):
        with pytest.raises(TokenConfigError) as raised:
            parse_tokens(spec)
        assert ALICE not in str(raised.value)


def test_without_tokens_the_service_refuses_to_start_unless_in_development():
    with pytest.raises(TokenConfigError, match="API_TOKENS is not set"):
        TokenRegistry.from_settings(None, dev_mode=False)
    registry = TokenRegistry.from_settings(None, dev_mode=True)
    assert registry.authenticate("dev-engineer-token") == Principal("dev-engineer", "engineer")
    assert "dev-client-token" in DEVELOPMENT_TOKENS


@pytest.mark.parametrize("spec", [DEVELOPMENT_TOKENS, f"ops:operator:{ALICE},me:engineer:dev-engineer-token"])
def test_published_development_tokens_are_refused_outside_development_mode(spec):
    with pytest.raises(TokenConfigError, match="published development token.*DEV_MODE=true"):
        TokenRegistry.from_settings(spec, dev_mode=False)
    assert TokenRegistry.from_settings(spec, dev_mode=True).authenticate("dev-engineer-token") is not None


def test_configured_tokens_replace_the_development_ones():
    registry = TokenRegistry.from_settings(f"ops:operator:{ALICE}", dev_mode=True)
    assert registry.authenticate(ALICE) == Principal("ops", "operator")
    assert registry.authenticate("dev-engineer-token") is None
    assert registry.authenticate("") is None
    assert registry.authenticate(ALICE[:-1]) is None
    assert registry.authenticate(ALICE + "x") is None


def test_tokens_are_kept_as_fixed_length_digests_only():
    registry = TokenRegistry(parse_tokens(f"ops:operator:{ALICE},crm:client:{BOB}"))
    kept = [digest for digest, _ in registry._entries]
    assert kept == [token_digest(ALICE), token_digest(BOB)]
    assert {len(d) for d in kept} == {32}
    assert ALICE.encode() not in b"".join(kept)
    # A presented token of any length is compared as a digest of the same length.
    assert registry.authenticate("x" * 10_000) is None


def _settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_both_sidecar_tokens_are_required_distinct_and_long():
    good = {"DAPR_API_TOKEN": "d" * 32}
    check_sidecar_tokens(_settings(app_api_token=SecretStr("a" * 32)), good)
    with pytest.raises(SidecarTokenError, match="DAPR_API_TOKEN is not set"):
        check_sidecar_tokens(_settings(app_api_token=SecretStr("a" * 32)), {})
    with pytest.raises(SidecarTokenError, match="APP_API_TOKEN is not set"):
        check_sidecar_tokens(_settings(), good)
    with pytest.raises(SidecarTokenError, match="APP_API_TOKEN is too short"):
        check_sidecar_tokens(_settings(app_api_token=SecretStr("short")), good)
    with pytest.raises(SidecarTokenError, match="must differ"):
        check_sidecar_tokens(_settings(app_api_token=SecretStr("d" * 32)), good)


def test_the_app_token_never_shows_in_the_settings_repr():
    settings = _settings(app_api_token=SecretStr("a-very-secret-app-token"))
    assert "a-very-secret-app-token" not in repr(settings)


@pytest.mark.parametrize("spec", ["600/minute", "20/second;600/minute", "5 per second"])
def test_rate_limits_parse(spec):
    assert _settings(rate_limit=spec).rate_limit == spec


def test_a_bad_rate_limit_is_refused():
    with pytest.raises(ValueError, match="RATE_LIMIT 'lots' is not a rate"):
        _settings(rate_limit="lots")
