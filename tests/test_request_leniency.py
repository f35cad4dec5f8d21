"""Requests in warn mode (issue 12): what the Platform accepts is sent as given, the rest refused.

The compute-environment and credentials bodies below are the ones Seqera's documentation
and tools send: ``config``/``keys`` without their ``discriminator`` (the type is in the
sibling ``platform``/``provider``), readOnly properties echoed from an export, ``null``
for unset optional properties.  Their property names are checked against the 1.181.0
document's member schemas (``test_bodies_use_the_documented_member_schemas``).  They go
through a real session to a loopback server that records the bytes it receives.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tower_async import Tower
from tower_async.errors import RequestValidationError
from tower_async.operations import bind_operations
from tower_async.validation import TOLERATED_REQUESTS, TowerValidationWarning, Validator

from .conftest import spec_path
from .documents import one_operation, patched_document

TOKEN = "leniency-token-9a7c"
LOGGER = "tower_async.validation"

CONFIGS: dict[str, dict[str, Any]] = {
    "aws-batch": {
        "region": "eu-west-1",
        "workDir": "s3://my-bucket/work",
        "forge": {"type": "SPOT", "minCpus": 0, "maxCpus": 256, "ebsAutoScale": True},
        "fusion2Enabled": False,
        "waveEnabled": False,
    },
    "google-batch": {
        "location": "europe-west2",
        "workDir": "gs://my-bucket/work",
        "spot": True,
        "projectId": "my-project",
        "headJobCpus": 2,
        "labels": {"team": "genomics"},
    },
    "azure-batch": {
        "region": "westeurope",
        "workDir": "az://work",
        "headPool": "tower-pool",
        "autoPoolMode": False,
        "deleteJobsOnCompletionEnabled": True,
    },
    "k8s-platform": {
        "server": "https://k8s.example.org",
        "namespace": "tower-nf",
        "sslCert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "storageClaimName": "tower-scratch",
        "workDir": "/scratch/work",
        "headServiceAccount": "tower-launcher-sa",
    },
    "eks-platform": {
        "region": "eu-west-1",
        "clusterName": "genomics-eks",
        "namespace": "tower-nf",
        "storageClaimName": "tower-scratch",
        "workDir": "/scratch/work",
    },
    "slurm-platform": {
        "hostName": "login.hpc.example.org",
        "userName": "alice",
        "port": 22,
        "workDir": "/home/alice/work",
        "launchDir": "/home/alice/launch",
        "headQueue": "normal",
        "maxQueueSize": 100,
    },
    "lsf-platform": {
        "hostName": "lsf.example.org",
        "userName": "alice",
        "workDir": "/home/alice/work",
        "computeQueue": "normal",
        "perJobMemLimit": True,
        "unitForLimits": "MB",
    },
    "altair-platform": {
        "hostName": "pbs.example.org",
        "userName": "alice",
        "workDir": "/home/alice/work",
        "headQueue": "workq",
    },
}

KEYS: dict[str, dict[str, Any]] = {
    "aws": {"accessKey": "AKIAEXAMPLE", "secretKey": "s3cr3t"},
    "google": {"data": '{"type": "service_account", "project_id": "my-project"}'},
    "azure": {
        "batchName": "mybatch",
        "batchKey": "k1",
        "storageName": "mystore",
        "storageKey": "k2",
    },
    "github": {"username": "octocat", "password": "ghp_example"},
    "gitlab": {"username": "alice", "token": "glpat-example", "password": "glpat-example"},
    "ssh": {"privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n", "passphrase": ""},
    "k8s": {"certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n", "privateKey": "pk"},
    "container-reg": {"userName": "alice", "password": "pw", "registry": "docker.io"},
}


def compute_env(platform: str, **extra: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "name": f"ce-{platform}",
        "platform": platform,
        "credentialsId": "4ZkrP1f0dtc",
    }
    env["config"] = copy.deepcopy(CONFIGS[platform])
    env.update(extra)
    return {"computeEnv": env, "labelIds": [101, 102]}


def credentials(provider: str, **extra: Any) -> dict[str, Any]:
    creds: dict[str, Any] = {"name": f"creds-{provider}", "provider": provider}
    creds["keys"] = copy.deepcopy(KEYS[provider])
    creds.update(extra)
    return {"credentials": creds}


# -- the document -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return patched_document("1.181.0")


def _member(document: dict[str, Any], family: str, value: str) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    target = schemas[family]["discriminator"]["mapping"][value]
    member: dict[str, Any] = schemas[target.rsplit("/", 1)[1]]
    return member


def test_bodies_use_the_documented_member_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    platforms = schemas["ComputeEnv_ComputeConfig_"]["properties"]["platform"]["enum"]
    providers = schemas["Credentials"]["properties"]["provider"]["enum"]
    for family, bodies, types in (
        ("ComputeConfig", CONFIGS, platforms),
        ("SecurityKeys", KEYS, providers),
    ):
        for value, body in bodies.items():
            assert value in types
            member = _member(document, family, value)
            assert set(body) <= set(member["properties"]), (
                value,
                set(body) - set(member["properties"]),
            )
            assert "discriminator" in member["properties"] and "discriminator" not in body
    assert len(CONFIGS) >= 5 and len(KEYS) >= 5


# -- a loopback server that records what it receives ------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.url = ""
        self.bodies: list[tuple[str, str, bytes]] = []


@asynccontextmanager
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    answers = {"/compute-envs": {"computeEnvId": "ce-new"}, "/credentials": {"credentialsId": "c1"}}

    async def handle(request: web.Request) -> web.Response:
        rec.bodies.append((request.method, request.path, await request.read()))
        answer = answers.get(request.path)
        if request.method != "POST" or answer is None:
            return web.json_response({"message": "not here"}, status=404)
        return web.json_response(answer)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield rec
    finally:
        await runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Recorder]:
    async with recorder() as rec:
        yield rec


@asynccontextmanager
async def session(rec: Recorder, cache: Path, validation: str) -> AsyncIterator[Tower]:
    async with Tower(
        spec=spec_path("1.181.0"),
        token=TOKEN,
        endpoint=rec.url,
        cache_dir=cache,
        rate_limit=None,
        validation=validation,  # type: ignore[arg-type]
    ) as tw:
        tw._require().validator.forget_reports()  # the bound document is shared by sessions
        yield tw


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    yield caplog


async def _send(tw: Tower, op_id: str, body: dict[str, Any]) -> list[str]:
    """Call ``op_id``; the TowerValidationWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await tw.call(op_id, workspace_id=77, body=body)
    return [str(w.message) for w in caught if issubclass(w.category, TowerValidationWarning)]


CASES = [("CreateComputeEnv", compute_env, p, "config") for p in CONFIGS] + [
    ("CreateCredentials", credentials, p, "keys") for p in KEYS
]
IDS = [case[2] for case in CASES]


# -- warn: sent as given, reported ------------------------------------------------------------


@pytest.mark.parametrize(("op_id", "make", "kind", "field"), CASES, ids=IDS)
async def test_documented_body_without_discriminator_is_sent_as_given_in_warn(
    op_id: str,
    make: Any,
    kind: str,
    field: str,
    server: Recorder,
    shared_cache_dir: Path,
    logs: pytest.LogCaptureFixture,
) -> None:
    body = make(kind)
    given = copy.deepcopy(body)
    async with session(server, shared_cache_dir, "warn") as tw:
        reported = await _send(tw, op_id, body)
    assert body == given  # not touched
    [(method, _, received)] = server.bodies
    assert method == "POST" and received == orjson.dumps(given)
    assert orjson.loads(received) == given
    wrapper = "computeEnv" if field == "config" else "credentials"
    [text] = reported
    assert f"{op_id} request body at body.{wrapper}.{field}:" in text
    assert "property 'discriminator' is missing" in text and "[missing-discriminator]" in text
    logged = [r for r in logs.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in logged] == [text]


async def test_each_deviation_is_reported_once_per_operation_and_path(
    server: Recorder, shared_cache_dir: Path, logs: pytest.LogCaptureFixture
) -> None:
    async with session(server, shared_cache_dir, "warn") as tw:
        first = await _send(tw, "CreateComputeEnv", compute_env("aws-batch", description=None))
        second = await _send(
            tw, "CreateComputeEnv", compute_env("slurm-platform", description=None)
        )
        other = await _send(tw, "CreateCredentials", credentials("aws"))
    assert len(first) == 2 and not second and len(other) == 1
    assert any("[null-property]" in t and "body.computeEnv.description" in t for t in first)
    assert len(server.bodies) == 3


async def test_exported_then_imported_config_is_sent_in_warn_and_refused_in_strict(
    server: Recorder, shared_cache_dir: Path
) -> None:
    exported = compute_env("aws-batch", workspaceId=572608, description=None)
    exported["computeEnv"]["config"]["deletedResources"] = []  # readOnly in AwsBatchConfig
    exported["computeEnv"]["config"]["nextflowConfig"] = None
    async with session(server, shared_cache_dir, "warn") as tw:
        reported = await _send(tw, "CreateComputeEnv", exported)
    assert orjson.loads(server.bodies[0][2]) == exported
    joined = "\n".join(reported)
    assert "read-only property 'workspaceId' must not be sent" in joined
    assert "read-only property 'deletedResources' must not be sent" in joined
    assert "null for 'nextflowConfig'" in joined and "False schema" not in joined

    async with session(server, shared_cache_dir, "strict") as tw:
        with pytest.raises(RequestValidationError) as info:
            await tw.call("CreateComputeEnv", workspace_id=77, body=exported)
    problems = dict(info.value.problems)
    assert problems["body.computeEnv.workspaceId"] == (
        "read-only property 'workspaceId' must not be sent"
    )
    assert "null for 'description'" in problems["body.computeEnv.description"]
    assert "'discriminator' is missing" in problems["body.computeEnv.config"]
    assert "False schema" not in str(info.value)
    assert len(server.bodies) == 1  # strict sent nothing


# -- strict: refused, naming the rule ---------------------------------------------------------


async def test_every_documented_body_is_refused_in_strict_naming_the_rule(
    server: Recorder, shared_cache_dir: Path
) -> None:
    async with session(server, shared_cache_dir, "strict") as tw:
        for op_id, make, kind, field in CASES:
            with pytest.raises(RequestValidationError) as info:
                await tw.call(op_id, workspace_id=77, body=make(kind))
            assert info.value.operation_id == op_id
            [(where, message)] = info.value.problems
            assert where.endswith(f".{field}")
            assert message.startswith("property 'discriminator' is missing: it selects the")
            assert kind in message  # the values it may take are listed
            # with the discriminator the same body is the document's
            fixed = make(kind)
            fixed[where.split(".")[1]][field]["discriminator"] = kind
            await tw.call(op_id, workspace_id=77, body=fixed)
    assert len(server.bodies) == len(CASES)
    assert all(b"discriminator" in body for _, _, body in server.bodies)


# -- real errors: refused in both modes, pointing at the problem ------------------------------


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


TYPE_ERRORS = [
    (
        "CreateComputeEnv",
        _with(compute_env("aws-batch"), "computeEnv.config.forge.minCpus", "0"),
        "body.computeEnv.config.forge.minCpus",
        '"0" is not of type "integer" (in AwsBatchConfig, chosen by platform \'aws-batch\')',
    ),
    (
        "CreateComputeEnv",
        _with(compute_env("slurm-platform"), "computeEnv.config.port", "22"),
        "body.computeEnv.config.port",
        '"22" is not of type "integer" (in SlurmComputeConfig, chosen by platform',
    ),
    (
        "CreateComputeEnv",
        _with(compute_env("google-batch"), "labelIds", ["101", "102"]),
        "body.labelIds[0]",
        '"101" is not of type "integer"',
    ),
    (
        "CreateComputeEnv",
        _with(compute_env("k8s-platform"), "computeEnv.platform", "kubernetes"),
        "body.computeEnv.platform",
        "expected one of the ComputeConfig types (aws-batch,",
    ),
    (
        "CreateComputeEnv",
        _with(compute_env("azure-batch"), "computeEnv.name", None),
        "body.computeEnv.name",
        "null for 'name'",
    ),
    (
        "CreateCredentials",
        _with(credentials("github"), "credentials.keys.username", 5),
        "body.credentials.keys.username",
        "5 is not of type \"string\" (in GitHubSecurityKeys, chosen by provider 'github')",
    ),
    (
        "CreateCredentials",
        _with(credentials("aws"), "credentials.keys.discriminator", "altair-platform"),
        "body.credentials.keys.discriminator",
        'unknown discriminator "altair-platform": expected one of the SecurityKeys types',
    ),
]


@pytest.mark.parametrize("mode", ["warn", "strict"])
async def test_real_errors_are_refused_in_both_modes_at_their_path(
    mode: str, server: Recorder, shared_cache_dir: Path
) -> None:
    async with session(server, shared_cache_dir, mode) as tw:
        for op_id, body, where, expected in TYPE_ERRORS:
            with pytest.raises(RequestValidationError) as info:
                await tw.call(op_id, workspace_id=77, body=body)
            problems = dict(info.value.problems)
            assert where in problems, (where, info.value.problems)
            assert problems[where].startswith(expected), problems[where]
            assert "False schema" not in str(info.value)
    assert not server.bodies


@pytest.mark.parametrize("mode", ["warn", "strict"])
async def test_parameter_errors_are_refused_in_both_modes(
    mode: str, server: Recorder, shared_cache_dir: Path
) -> None:
    async with session(server, shared_cache_dir, mode) as tw:
        with pytest.raises(RequestValidationError, match="computeEnvId"):
            await tw.call("DescribeComputeEnv", workspace_id=77)
        with pytest.raises(RequestValidationError, match="colour"):
            await tw.call(
                "CreateComputeEnv", workspace_id=77, colour=1, body=compute_env("lsf-platform")
            )
    assert not server.bodies


def _closed_document() -> dict[str, Any]:
    thing = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "note": {"type": "string"}},
    }
    return one_operation("CreateThing", thing)


@pytest.mark.parametrize("mode", ["warn", "strict"])
def test_unknown_property_of_a_closed_schema_is_refused(mode: Any) -> None:
    doc = _closed_document()
    op = bind_operations(doc)["CreateThing"]
    validator = Validator(doc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validator.validate_request_body(op, {"name": "a", "note": "n"}, "warn")
    with pytest.raises(RequestValidationError) as info:
        validator.validate_request_body(op, {"name": "a", "colour": "red"}, mode)
    [(where, message)] = info.value.problems
    assert where == "body" and message.startswith("unknown property 'colour'")


# -- the sibling type field is found from the document ----------------------------------------


def _pets_document() -> dict[str, Any]:
    schemas = {
        "Cat": {
            "type": "object",
            "properties": {"petType": {"type": "string"}, "lives": {"type": "integer"}},
        },
        "Dog": {
            "type": "object",
            "properties": {"petType": {"type": "string"}, "bark": {"type": "boolean"}},
        },
        "Pet": {
            "type": "object",
            "discriminator": {
                "propertyName": "petType",
                "mapping": {"cat": "#/components/schemas/Cat", "dog": "#/components/schemas/Dog"},
            },
            "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
        },
        "Owner": {
            "type": "object",
            "required": ["pet"],
            "properties": {
                "name": {"type": "string", "enum": ["cat", "x"]},  # not a type field: half-match
                "kind": {"type": "string", "enum": ["cat", "dog"]},
                "pet": {"$ref": "#/components/schemas/Pet"},
            },
        },
    }
    owner = {"$ref": "#/components/schemas/Owner"}
    ok = {"200": {"description": "ok", "content": {"application/json": {"schema": owner}}}}
    return one_operation("CreateOwner", owner, ok, schemas)


def test_sibling_type_field_is_found_from_the_document() -> None:
    doc = _pets_document()
    op = bind_operations(doc)["CreateOwner"]
    validator = Validator(doc)
    with pytest.warns(TowerValidationWarning, match=r"body\.pet: property 'petType' is missing"):
        validator.validate_request_body(op, {"kind": "cat", "pet": {"lives": 9}}, "warn")
    with pytest.raises(RequestValidationError) as info:
        validator.validate_request_body(op, {"kind": "dog", "pet": {"bark": "woof"}}, "warn")
    assert dict(info.value.problems)["body.pet.bark"].endswith("(in Dog, chosen by kind 'dog')")
    with pytest.raises(RequestValidationError) as info:
        validator.validate_request_body(op, {"kind": "cow", "pet": {}}, "warn")
    assert "expected one of the Pet types (cat, dog)" in dict(info.value.problems)["body.kind"]
    # without the type field there is nothing to tell the type: refused
    with pytest.raises(RequestValidationError, match="'kind' is missing: without 'petType'"):
        validator.validate_request_body(op, {"pet": {"lives": 9}}, "warn")
    # responses select the same way: the real problem, inside the member the sibling picks
    with pytest.warns(
        TowerValidationWarning, match=r"\$\.pet\.lives: .*\(in Cat, chosen by kind 'cat'\)"
    ):
        validator.validate_response(
            op, 200, "application/json", {"kind": "cat", "pet": {"lives": "x"}}, "warn"
        )


def test_response_config_without_discriminator_is_checked_against_its_platform(
    document: dict[str, Any],
) -> None:
    validator = Validator(document)
    ops = bind_operations(document)
    env = compute_env("aws-batch")["computeEnv"]
    env.update(id="ce1", status="AVAILABLE")
    op = ops["DescribeComputeEnv"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validator.validate_response(op, 200, "application/json", {"computeEnv": env}, "warn")
    env["config"]["forge"]["maxCpus"] = "many"
    with pytest.warns(TowerValidationWarning) as caught:
        validator.validate_response(op, 200, "application/json", {"computeEnv": env}, "warn")
    [text] = [str(w.message) for w in caught]
    assert "$.computeEnv.config.forge.maxCpus" in text
    assert "(in AwsBatchConfig, chosen by platform 'aws-batch')" in text


def test_tolerated_request_kinds_are_documented() -> None:
    assert set(TOLERATED_REQUESTS) == {
        "missing-discriminator",
        "read-only-property",
        "null-property",
    }


def test_without_discriminator_or_type_field_the_closest_member_is_named() -> None:
    schemas = _pets_document()["components"]["schemas"]
    schemas["Cat"]["properties"]["claws"] = {"type": "integer"}
    pet = {"$ref": "#/components/schemas/Pet"}
    ok = {"200": {"description": "ok", "content": {"application/json": {"schema": pet}}}}
    doc = one_operation("CreatePet", pet, ok, schemas)
    op = bind_operations(doc)["CreatePet"]
    validator = Validator(doc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a member fits: a tolerated missing discriminator
        validator.validate_response(op, 200, "application/json", {"lives": 9}, "warn")
    bad = {"bark": "yes", "lives": "nine", "claws": "sharp"}  # fits neither; Dog is closer
    with pytest.warns(TowerValidationWarning) as caught:
        validator.validate_response(op, 200, "application/json", bad, "warn")
    [text] = [str(w.message) for w in caught]
    assert '$.bark: "yes" is not of type "boolean" (in Dog, the closest)' in text
    # requests: refused (nothing tells the type), with the real problem in the closest member
    with pytest.raises(RequestValidationError) as info:
        validator.validate_request_body(op, bad, "warn")
    problems = dict(info.value.problems)
    assert problems["body"].startswith("property 'petType' is missing")
    assert problems["body.bark"].endswith("(in Dog, the closest)")
