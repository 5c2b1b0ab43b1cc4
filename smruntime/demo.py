"""``smruntime demo``: the local endpoint in-process, and the operations against it."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, TextIO

from smruntime import Client
from smruntime.timing import format_timings, record_timings

DEMO_CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
"""The AWS documentation's example key pair: the local endpoint accepts it, AWS does not."""


def run(out: TextIO = sys.stdout) -> int:
    from smruntime.local import LocalEndpoint
    from smruntime.local.config import demo_config

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    with tempfile.TemporaryDirectory(prefix="smruntime-demo-") as scratch:
        config = demo_config(Path(scratch))
        with LocalEndpoint(config, credentials=DEMO_CREDENTIALS) as endpoint, Client(
            region="us-east-1", endpoint_url=endpoint.url, credentials=DEMO_CREDENTIALS,
            http2_endpoint_url=endpoint.http2_url,
        ) as client:
            say(f"Local SageMaker endpoint listening on {endpoint.url}")
            say()

            say("== InvokeEndpoint: the 'sum' model does real arithmetic ==")
            body = {"numbers": [3, 1, 4, 1, 5, 9, 2, 6]}
            result = client.invoke_endpoint(
                endpoint_name="sum",
                body=json.dumps(body),
                content_type="application/json",
                accept="application/json",
            )
            say(f"request body:   {json.dumps(body)}")
            say(f"response body:  {result.body.decode()}")
            say(f"content type:   {result.content_type}")
            say(f"variant:        {result.invoked_production_variant}")
            say(f"metadata:       request_id={result.metadata.request_id} attempts={result.metadata.attempts} "
                f"http_status={result.metadata.http_status}")
            say()

            say("== The stack every InvokeEndpoint call runs through ==")
            out.write(str(client.stack("InvokeEndpoint")))
            say()

            say("== A custom middleware at work: where this call's client-side time went ==")
            timed = client.invoke_endpoint(
                endpoint_name="sum",
                body=json.dumps(body),
                content_type="application/json",
                options=[lambda options: options.api_options.append(record_timings)],
            )
            say(format_timings(timed.metadata.timings))
            say()

            say("== InvokeEndpointWithResponseStream: tokens as they arrive ==")
            with client.invoke_endpoint_with_response_stream(
                endpoint_name="tokens",
                body="SageMaker streams tokens one PayloadPart at a time to the caller",
                content_type="text/plain",
            ) as stream:
                started = time.perf_counter()
                for part in stream:
                    elapsed = (time.perf_counter() - started) * 1000
                    say(f"  +{elapsed:7.1f} ms  {part.bytes!r}")
            say()

            say("== InvokeEndpointWithBidirectionalStream: turns on one HTTP/2 stream ==")
            _conversation(client, say)
            say()

            say("== InvokeEndpointAsync: input and output on file:// locations ==")
            source = Path(scratch) / "input.json"
            source.write_text(json.dumps({"numbers": [10, 20, 30]}))
            queued = client.invoke_endpoint_async(
                endpoint_name="sum-async", input_location=source.as_uri(), content_type="application/json"
            )
            say(f"inference id:     {queued.inference_id}")
            say(f"output location:  {queued.output_location}")
            answer = client.wait_for_async_inference(queued, timeout=30, poll_interval=0.05, file_root=scratch)
            say(f"result:           {answer.decode()}")
    return 0



def _conversation(client: Client, say: Callable[[str], None]) -> None:
    """Each turn goes out as an event; the model answers it word by word, on the same stream."""
    with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="tokens") as stream:
        started = time.perf_counter()
        for turn in ("hello over HTTP/2", "every event signed and chained"):
            stream.send(turn, completion_state="COMPLETE")
            say(f"  +{(time.perf_counter() - started) * 1000:7.1f} ms  sent      {turn!r}")
            for part in stream:
                text = part.bytes.decode("utf-8", "replace")  # the model answers in UTF8 parts
                say(f"  +{(time.perf_counter() - started) * 1000:7.1f} ms  received  {text!r} ({part.completion_state})")
                if part.completion_state == "COMPLETE":
                    break
        stream.end_input()
        for part in stream:  # nothing more: the model ends the stream once the input ends
            say(f"  received {part.bytes.decode('utf-8', 'replace')!r}")
        say(f"variant: {stream.invoked_production_variant}")
