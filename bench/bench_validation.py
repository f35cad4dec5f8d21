"""Validation overhead against raw aiohttp + orjson on a loopback server (issue #4).

    .venv/bin/python bench/bench_validation.py [--rounds N] [--spec PATH]

Serves realistic 1.181.0-shaped payloads (a 100-run ListWorkflows page of ~440 KB, a
DescribeWorkflow, a launch response, a 204 DELETE) from an in-process aiohttp.web
server and measures, interleaved in one run, medians of:

* raw: aiohttp request + ``orjson.loads``;
* validated: the same + ``Validator.validate_response`` (``warn`` mode; plus
  ``validate_request_body`` for the launch POST);
* the library's fixed per-call overhead on a 204 DELETE without I/O:
  ``build_request`` + ``parse_response`` + ``validate_response``;
* the full session call (``Tower``), when ``tower_async.Tower`` is importable.

Goals: 100-run page <= 1.5x raw, DescribeWorkflow and launch <= 1.2x raw, fixed
overhead < 50 us.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tower_async.operations import bind_operations  # noqa: E402
from tower_async.patches import apply_patches  # noqa: E402
from tower_async.sansio import RawResponse, build_request, parse_response  # noqa: E402
from tower_async.validation import Validator  # noqa: E402

SPECS = Path(os.environ.get("TOWER_ASYNC_SPECS", REPO.parent / "shared" / "openapi"))


def stamp(i: int) -> str:
    return f"2024-05-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(7 * i) % 60:02d}.{i % 1000:03d}Z"


def workflow(i: int) -> dict[str, Any]:
    return {
        "id": f"4Bx1b1F7zv{i:04d}",
        "submit": stamp(i),
        "start": stamp(i + 1),
        "complete": stamp(i + 2),
        "dateCreated": stamp(i),
        "lastUpdated": stamp(i + 3),
        "runName": f"happy_turing_{i}",
        "sessionId": f"5d3c0b2a-{i:04d}-4b9e-9a1c-2f0e8b6d7c11",
        "profile": "docker,test",
        "workDir": f"s3://seqera-work/scratch/{i:06x}",
        "commitId": "3b9e1f0d9c7a6e5d4c3b2a19f8e7d6c5b4a39281",
        "userName": "alice",
        "scriptId": "7c0a0b1c2d3e4f5a",
        "revision": "3.14.0",
        "commandLine": "nextflow run nf-core/rnaseq -r 3.14.0 -profile docker,test "
        "-with-tower --outdir s3://bucket/results " + "-params-file params.yml " * 8,
        "projectName": "nf-core/rnaseq",
        "scriptName": "main.nf",
        "launchId": f"2XyZ{i:018d}",
        "status": ["SUCCEEDED", "RUNNING", "FAILED", "CANCELLED"][i % 4],
        "configFiles": [
            "/.nextflow/assets/nf-core/rnaseq/nextflow.config",
            "/tower/nextflow.config",
        ],
        "params": {
            "input": f"s3://bucket/samplesheet_{i}.csv",
            "outdir": "s3://bucket/results",
            "genome": "GRCh38",
            "max_cpus": 16,
            "max_memory": "128.GB",
            "skip_qc": False,
            "aligner": "star_salmon",
            "pseudo_aligner": "salmon",
            "extra": {"a": [1, 2, 3], "b": "x" * 40},
        },
        "configText": "process { executor = 'awsbatch'; queue = 'TowerForge-queue' }\n" * 12,
        "manifest": {
            "nextflowVersion": "!>=23.04.0",
            "defaultBranch": "master",
            "version": "3.14.0",
            "homePage": "https://github.com/nf-core/rnaseq",
            "description": "RNA sequencing analysis pipeline for gene/isoform quantification",
            "name": "nf-core/rnaseq",
            "mainScript": "main.nf",
            "author": "Harshil Patel, Phil Ewels, Rickard Hammarén",
        },
        "nextflow": {"version": "23.10.1", "build": "5891", "timestamp": "2024-01-14T12:00:00Z"},
        "stats": {
            "computeTimeFmt": "(a few seconds)",
            "cachedCount": i % 7,
            "failedCount": 0,
            "ignoredCount": 0,
            "succeedCount": 120 + i,
            "cachedCountFmt": str(i % 7),
            "succeedCountFmt": str(120 + i),
            "failedCountFmt": "0",
            "ignoredCountFmt": "0",
            "cachedPct": 5.5,
            "failedPct": 0.0,
            "succeedPct": 94.5,
            "ignoredPct": 0.0,
            "cachedDuration": 1234,
            "failedDuration": 0,
            "succeedDuration": 98765,
        },
        "errorMessage": "",
        "exitStatus": 0,
        "duration": 3600000 + i,
        "resume": False,
        "success": True,
        "repository": "https://github.com/nf-core/rnaseq",
        "launchDir": "/workspace",
        "projectDir": "/.nextflow/assets/nf-core/rnaseq",
        "homeDir": "/root",
        "container": "quay.io/biocontainers/multiqc:1.19",
        "containerEngine": "docker",
        "scriptFile": "/.nextflow/assets/nf-core/rnaseq/main.nf",
        "ownerId": 42,
        "deleted": False,
        "requiresAttention": False,
    }


LOAD_FIELDS = [
    "aborted",
    "cached",
    "cpuLoad",
    "cpuTime",
    "cpus",
    "failed",
    "ignored",
    "invCtxSwitch",
    "loadCpus",
    "loadMemory",
    "loadTasks",
    "memoryReq",
    "memoryRss",
    "peakCpus",
    "peakMemory",
    "peakTasks",
    "pending",
    "readBytes",
    "retries",
    "running",
    "submitted",
    "succeeded",
    "volCtxSwitch",
    "writeBytes",
]


def load(i: int) -> dict[str, int]:
    """The required counters of WorkflowLoad / ProcessLoad."""
    return {name: (i * 7 + k) % 1000 for k, name in enumerate(LOAD_FIELDS)}


def list_element(i: int) -> dict[str, Any]:
    return {
        "workflow": workflow(i),
        "progress": {
            "workflowProgress": {
                **load(i),
                "dateCreated": stamp(i),
                "lastUpdated": stamp(i),
                "executors": ["awsbatch"],
                "cost": 1.25,
            },
            "processesProgress": [
                {**load(k), "process": f"NFCORE_RNASEQ:STEP_{k}"} for k in range(3)
            ],
            "totalProcesses": 3,
        },
        "orgId": 1,
        "orgName": "seqera",
        "workspaceId": 10,
        "workspaceName": "showcase",
        "labels": [{"id": 7, "name": "team", "value": "rna", "resource": True, "isDefault": False}],
        "starred": False,
        "optimized": False,
        "pipelineInfo": {"id": 3, "version": {"id": "v5", "name": "3.14.0"}, "workspaceId": 10},
    }


def payloads() -> dict[str, bytes]:
    page = {"workflows": [list_element(i) for i in range(100)], "totalSize": 100, "hasMore": False}
    describe = {
        "workflow": workflow(7),
        "progress": list_element(7)["progress"],
        "platform": {"id": "aws-batch", "name": "Amazon Batch"},
        "jobInfo": {
            "id": 12,
            "operationId": "op-1",
            "message": "ok",
            "status": "OK",
            "exitCode": 0,
        },
        "orgId": 1,
        "orgName": "seqera",
        "workspaceId": 10,
        "workspaceName": "showcase",
        "labels": [],
        "messages": [],
        "optimized": False,
        "cost": 1.5,
    }
    return {
        "list": orjson.dumps(page),
        "describe": orjson.dumps(describe),
        "launch": orjson.dumps({"workflowId": "4Bx1b1F7zvr1Cs"}),
    }


LAUNCH_BODY = {
    "launch": {
        "computeEnvId": "4Xyz0aB1cD2eF3",
        "pipeline": "https://github.com/nf-core/rnaseq",
        "workDir": "s3://seqera-work/scratch",
        "revision": "3.14.0",
        "configProfiles": ["docker", "test"],
        "paramsText": "input: s3://bucket/samplesheet.csv\noutdir: s3://bucket/results\n",
        "pullLatest": False,
        "stubRun": False,
        "labelIds": [7, 8],
        "resume": False,
    }
}


async def serve(bodies: dict[str, bytes]) -> tuple[web.AppRunner, str]:
    async def get_list(_: web.Request) -> web.Response:
        return web.Response(body=bodies["list"], content_type="application/json")

    async def get_one(_: web.Request) -> web.Response:
        return web.Response(body=bodies["describe"], content_type="application/json")

    async def launch(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=bodies["launch"], content_type="application/json")

    async def delete(_: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/workflow", get_list)
    app.router.add_post("/workflow/launch", launch)
    app.router.add_get("/workflow/{workflowId}", get_one)
    app.router.add_delete("/workflow/{workflowId}", delete)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def median_ms(fn: Callable[[], Awaitable[Any]], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def interleaved(
    a: Callable[[], Awaitable[Any]], b: Callable[[], Awaitable[Any]], rounds: int
) -> tuple[float, float]:
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(rounds):
        for fn, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            await fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000


async def main(rounds: int, spec: Path) -> None:
    t0 = time.perf_counter()
    with spec.open("rb") as f:
        document = yaml.load(f, Loader=yaml.CSafeLoader)
    apply_patches(document)
    print(f"document {spec.name}: loaded and patched in {time.perf_counter() - t0:.2f} s")
    ops = bind_operations(document)
    validator = Validator(document)
    validator.sample_every = 1  # the full cost of every check (warn-mode sampling: bench_overhead)
    bodies = payloads()
    print(
        f"payloads: ListWorkflows(100) {len(bodies['list']) / 1000:.0f} KB, "
        f"DescribeWorkflow {len(bodies['describe']) / 1000:.1f} KB"
    )

    # compile cost, measured on first use
    for name, status in (
        ("ListWorkflows", 200),
        ("DescribeWorkflow", 200),
        ("CreateWorkflowLaunch", 200),
    ):
        t0 = time.perf_counter()
        validator.validate_response(
            ops[name],
            status,
            "application/json",
            orjson.loads(bodies["launch"]) if name == "CreateWorkflowLaunch" else {},
            "warn",
        )
        print(f"first use (convert + compile) {name}: {(time.perf_counter() - t0) * 1000:.1f} ms")
    t0 = time.perf_counter()
    validator.validate_request_body(ops["CreateWorkflowLaunch"], LAUNCH_BODY, "strict")
    print(
        f"first use request body CreateWorkflowLaunch: {(time.perf_counter() - t0) * 1000:.1f} ms"
    )

    runner, base = await serve(bodies)
    try:
        async with aiohttp.ClientSession() as http:

            def getter(path: str, op_name: str | None) -> Callable[[], Awaitable[Any]]:
                op = ops[op_name] if op_name else None

                async def run() -> Any:
                    async with http.get(base + path) as r:
                        data = orjson.loads(await r.read())
                        if op is not None:
                            validator.validate_response(op, r.status, r.content_type, data, "warn")
                        return data

                return run

            def launcher(validate: bool) -> Callable[[], Awaitable[Any]]:
                op = ops["CreateWorkflowLaunch"]

                async def run() -> Any:
                    if validate:
                        validator.validate_request_body(op, LAUNCH_BODY, "warn")
                    async with http.post(
                        base + "/workflow/launch?workspaceId=10",
                        data=orjson.dumps(LAUNCH_BODY),
                        headers={"Content-Type": "application/json"},
                    ) as r:
                        data = orjson.loads(await r.read())
                        if validate:
                            validator.validate_response(op, r.status, r.content_type, data, "warn")
                        return data

                return run

            for _ in range(20):  # warm up connections
                await getter("/workflow/x", None)()
            cases = [
                (
                    "ListWorkflows(100)",
                    getter("/workflow?max=100", None),
                    getter("/workflow?max=100", "ListWorkflows"),
                    max(rounds // 4, 30),
                    1.5,
                ),
                (
                    "DescribeWorkflow",
                    getter("/workflow/4Bx1b1F7zvr1Cs", None),
                    getter("/workflow/4Bx1b1F7zvr1Cs", "DescribeWorkflow"),
                    rounds,
                    1.2,
                ),
                ("launch POST", launcher(False), launcher(True), rounds, 1.2),
            ]
            for label, raw, validated, n, goal in cases:
                raw_ms, val_ms = await interleaved(raw, validated, n)
                ratio = val_ms / raw_ms
                verdict = "ok" if ratio <= goal else f"ABOVE goal {goal}x"
                print(
                    f"{label} validated: {val_ms:.3f} ms vs raw {raw_ms:.3f} ms = "
                    f"{ratio:.2f}x (goal <= {goal}x: {verdict})"
                )

            # validation alone, no I/O
            page = orjson.loads(bodies["list"])
            describe = orjson.loads(bodies["describe"])
            for label, op_name, data in (
                ("ListWorkflows(100)", "ListWorkflows", page),
                ("DescribeWorkflow", "DescribeWorkflow", describe),
            ):
                op = ops[op_name]
                n = 50 if op_name == "ListWorkflows" else 2000
                t0 = time.perf_counter()
                for _ in range(n):
                    validator.validate_response(op, 200, "application/json", data, "warn")
                us = (time.perf_counter() - t0) / n * 1e6
                print(f"validate_response alone {label}: {us:.1f} us")

            # fixed per-call overhead of the library, no I/O: a 204 DELETE
            op = ops["DeleteWorkflow"]
            raw204 = RawResponse(status=204, headers={}, body=b"")
            n = 20000
            t0 = time.perf_counter()
            for _ in range(n):
                request = build_request(
                    op, base, {"workflow_id": "4Bx1b1F7zvr1Cs", "workspace_id": 10}
                )
                data = parse_response(op, request, raw204)
                validator.validate_response(op, 204, "", data, "warn")
            us = (time.perf_counter() - t0) / n * 1e6
            t0 = time.perf_counter()
            for _ in range(n):
                validator.validate_response(op, 204, "", None, "warn")
            us_validate = (time.perf_counter() - t0) / n * 1e6
            print(
                f"fixed per-call overhead (204 DELETE: build_request + parse_response + "
                f"validate_response): {us:.1f} us (goal < 50 us; validate_response part "
                f"{us_validate:.2f} us)"
            )

            try:
                from tower_async import Tower
            except ImportError:
                print("full session: tower_async.Tower not available yet")
            else:
                async with Tower(
                    spec=str(spec), token="bench-token", endpoint=base, rate_limit=None
                ) as tw:
                    raw = getter("/workflow?max=100", None)

                    async def session_list() -> Any:
                        return await tw.list_workflows(workspace_id=10, max=100)

                    async def session_describe() -> Any:
                        return await tw.describe_workflow(workflow_id="4Bx1b1F7zvr1Cs")

                    async def session_delete() -> Any:
                        return await tw.delete_workflow(workflow_id="4Bx1b1F7zvr1Cs")

                    async def raw_delete() -> Any:
                        async with http.delete(base + "/workflow/4Bx1b1F7zvr1Cs") as r:
                            return await r.read()

                    for label, a, b, n in (
                        ("ListWorkflows(100)", raw, session_list, max(rounds // 4, 30)),
                        (
                            "DescribeWorkflow",
                            getter("/workflow/4Bx1b1F7zvr1Cs", None),
                            session_describe,
                            rounds,
                        ),
                        ("DeleteWorkflow 204", raw_delete, session_delete, rounds),
                    ):
                        raw_ms, tw_ms = await interleaved(a, b, n)
                        print(
                            f"session {label}: {tw_ms:.3f} ms vs raw {raw_ms:.3f} ms = "
                            f"{tw_ms / raw_ms:.2f}x (+{(tw_ms - raw_ms) * 1000:.0f} us)"
                        )
                    await bench_tracing(tw, spec, base, session_describe, rounds)
    finally:
        await runner.cleanup()


async def bench_tracing(
    tw: Any, spec: Path, base: str, untraced: Callable[[], Awaitable[Any]], rounds: int
) -> None:
    """DescribeWorkflow with Tower(tracing=True) (SDK provider, batch processor, an exporter
    that drops) against the same call untraced, over 3 repeats; the SDK's own cost of the
    same span outside any call; and what tracing off leaves on the path."""
    op = tw.operations["DescribeWorkflow"]
    request = tw.build(op, workflow_id="4Bx1b1F7zvr1Cs")
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        tw._observe.begin(op, request)  # None: the only observability code of an untraced call
    off_us = (time.perf_counter() - t0) / n * 1e6
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult as Result
    except ImportError:
        print("tracing: opentelemetry-sdk not installed (pip install tower-async[test])")
        return

    class Drop(SpanExporter):
        def export(self, spans: Any) -> Result:
            return Result.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    from tower_async import Tower
    from tower_async.tracing import OtelTracer

    async with Tower(
        spec=str(spec), token="bench-token", endpoint=base, rate_limit=None, tracing=True
    ) as traced:

        async def traced_describe() -> Any:
            return await traced.describe_workflow(workflow_id="4Bx1b1F7zvr1Cs")

        for _ in range(200):  # both sessions past warn-mode sampling's first clean checks
            await traced_describe()
            await untraced()
        added: list[float] = []
        for _ in range(3):
            off_ms, on_ms = await interleaved(untraced, traced_describe, max(rounds, 2000))
            added.append((on_ms - off_ms) * 1000)
        sdk_us = span_cost(OtelTracer(base), op, request)

        class BareSpan(OtelTracer):  # the SDK's floor: a span, no attributes, not current
            def start(self, op: Any, request: Any) -> Any:
                return self._tracer.start_span("bare")

            def finish(self, handle: Any, *args: Any) -> None:
                handle.end()

        traced._observe.tracer = BareSpan(base)
        bare: list[float] = []
        for _ in range(3):
            off_ms2, bare_ms = await interleaved(untraced, traced_describe, max(rounds, 2000))
            bare.append((bare_ms - off_ms2) * 1000)
    provider.shutdown()
    print(
        f"session DescribeWorkflow tracing on: +{statistics.median(added):.0f} us per call "
        f"(repeats {', '.join(f'{a:+.0f}' for a in added)} us; goal < 30 us; on {on_ms:.3f} ms "
        f"vs off {off_ms:.3f} ms); the SDK's bare span (no attributes, not current) in the same "
        f"call: +{statistics.median(bare):.0f} us (repeats {', '.join(f'{b:+.0f}' for b in bare)}"
        f"); our span with its attributes outside any call: {sdk_us:.1f} us; tracing off: "
        f"{off_us:.2f} us per call (Observability.begin returning None)"
    )


def span_cost(tracer: Any, op: Any, request: Any) -> float:
    """Microseconds per start + finish of the call's span outside any call."""
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        tracer.finish(tracer.start(op, request), 200, 1, 0.0, None)
    return (time.perf_counter() - t0) / n * 1e6


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--spec", type=Path, default=SPECS / "seqera-api-1.181.0.yaml")
    args = parser.parse_args()
    if not args.spec.is_file():
        sys.exit(f"no document at {args.spec} (set TOWER_ASYNC_SPECS)")
    asyncio.run(main(args.rounds, args.spec))
