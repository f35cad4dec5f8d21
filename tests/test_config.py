"""``tower_async.config``: the grouped, frozen configuration behind ``Tower(...)``."""

from __future__ import annotations

import dataclasses
import ssl
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tower_async import ConfigurationError, Tower
from tower_async.clock import VirtualClock
from tower_async.config import (
    LimitsConfig,
    NetworkConfig,
    ObserveConfig,
    TowerConfig,
    ValidationConfig,
)
from tower_async.orchestration import resolve_pipeline
from tower_async.testing import FakePlatform

ENDPOINT = "https://tower.example.test/api"


def test_groups_are_frozen_and_the_token_is_not_shown() -> None:
    config = TowerConfig(token="sekret-token", network=NetworkConfig(endpoint=ENDPOINT))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.token = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.network.proxy = "http://p"  # type: ignore[misc]
    assert "sekret-token" not in repr(config)


def test_tower_takes_a_config() -> None:
    clock = VirtualClock()
    config = TowerConfig(
        token="t",
        workspace="12",
        network=NetworkConfig(endpoint=ENDPOINT + "/", deadline=30, user_agent="me/1"),
        limits=LimitsConfig(rate=7, adaptive=False),
        validation=ValidationConfig(mode="strict", validate_document=False),
        observe=ObserveConfig(tracing=False),
        clock=clock,
    )
    tw = Tower(config=config)
    assert tw.endpoint == ENDPOINT  # checked and normalised
    assert tw.workspace == 12 and tw.workspace_id == 12
    assert (tw.rate_limit, tw.adaptive_rate, tw.validation, tw.deadline) == (7, False, "strict", 30)
    assert tw.clock is clock
    assert tw.config.network.endpoint == ENDPOINT and tw.config.limits.rate == 7
    assert tw.config.network.user_agent == "me/1"


def test_keyword_arguments_replace_the_configs_values() -> None:
    config = TowerConfig(
        token="t", network=NetworkConfig(endpoint=ENDPOINT), limits=LimitsConfig(rate=7)
    )
    tw = Tower(config=config, rate_limit=3, validation="off")
    assert tw.rate_limit == 3 and tw.validation == "off"
    assert tw.endpoint == ENDPOINT  # not given: the config's
    untouched = Tower(config=config)  # defaults do not override
    assert untouched.rate_limit == 7 and untouched.validation == "warn"


def test_flat_and_grouped_give_the_same_config() -> None:
    flat = Tower(token="t", endpoint=ENDPOINT, rate_limit=5, deadline=9, verify=False)
    grouped = Tower(
        config=TowerConfig(
            token="t",
            network=NetworkConfig(endpoint=ENDPOINT, deadline=9, verify=False),
            limits=LimitsConfig(rate=5),
        )
    )
    assert flat.config == grouped.config


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"verify": 42}, "verify"),
        ({"verify": "/no/such/ca.pem"}, "verify"),
        ({"validation": "loud"}, "validation"),
        ({"rate_limit": 0.0}, "rate_limit"),
        ({"timeout": -1}, "timeout"),
        ({"deadline": "soon"}, "deadline"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Tower(token="t", endpoint=ENDPOINT, **options)


def test_a_bad_grouped_option_is_caught_too() -> None:
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        Tower(config=TowerConfig(token="t", network=NetworkConfig(max_response_bytes=0)))
    with pytest.raises(ConfigurationError, match="sets its own rate"):
        Tower(
            config=TowerConfig(
                token="t",
                limits=LimitsConfig(rate=5, limiter=object()),  # type: ignore[arg-type]
            )
        )


def test_from_kwargs_reads_the_environment_and_refuses_unknown_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOWER_ACCESS_TOKEN", "from-env")
    monkeypatch.setenv("TOWER_API_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("TOWER_WORKSPACE_ID", "42")
    config = TowerConfig.from_kwargs()
    assert (config.token, config.network.endpoint, config.workspace) == ("from-env", ENDPOINT, 42)
    with pytest.raises(ConfigurationError, match="rate_limt"):
        TowerConfig.from_kwargs(rate_limt=5)
    monkeypatch.setenv("TOWER_API_ENDPOINT", "ftp://nope")
    with pytest.raises(ConfigurationError, match="endpoint"):
        TowerConfig.from_kwargs()


def test_deprecated_spellings_warn_at_the_caller_and_still_work(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning, match="verify=") as caught:
        tw = Tower(token="t", endpoint=ENDPOINT, verify_ssl=False)
    assert caught[0].filename == __file__
    assert tw.config.network.verify is False and tw._ssl() is False
    ca = tmp_path / "none.pem"
    with pytest.warns(DeprecationWarning, match="verify="), pytest.raises(ConfigurationError):
        Tower(token="t", endpoint=ENDPOINT, ca_file=ca)  # unreadable: a clear error
    with pytest.raises(ConfigurationError, match="verify= only"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        Tower(token="t", endpoint=ENDPOINT, verify=False, ca_file=ca)


def test_verify_takes_an_ssl_context() -> None:
    context = ssl.create_default_context()
    tw = Tower(token="t", endpoint=ENDPOINT, verify=context)
    assert tw._ssl() is context


async def test_http_session_and_its_old_name(fake: FakePlatform, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        async with Tower(
            token=fake.token, endpoint=fake.url, cache_dir=tmp_path, http_session=http
        ) as tw:
            assert tw.http is http
            assert (await tw.info())["serviceInfo"]
        assert not http.closed  # the caller's: left open
        with pytest.warns(DeprecationWarning, match="http_session="):
            old = Tower(token=fake.token, endpoint=fake.url, cache_dir=tmp_path, session=http)
        async with old as tw:
            assert tw.http is http
        with (
            pytest.raises(ConfigurationError, match="http_session= only"),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", DeprecationWarning)
            Tower(token="t", endpoint=ENDPOINT, session=http, http_session=http)


async def test_memo_is_the_fan_out_memo_and_cache_its_old_name(
    fake: FakePlatform, tw: Tower
) -> None:
    await resolve_pipeline(tw, "hello")
    assert tw.memo  # the lookup is memoised there
    with pytest.warns(DeprecationWarning, match="memo"):
        assert tw.cache is tw.memo
