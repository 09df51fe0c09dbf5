"""A test-only function app exercising every binding the local host supports."""

import json
import os
import time

import azure.functions as func

app = func.FunctionApp()


def record(kind: str, **fields) -> None:
    """Append one JSON line per invocation (O_APPEND keeps lines whole across processes)."""
    line = json.dumps({"kind": kind, "pid": os.getpid(), "at": time.time(), **fields}) + "\n"
    with open(os.environ["SAMPLE_OUT"], "a") as out:
        out.write(line)


@app.route(route="open", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def open_route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("open", mimetype="text/plain")


@app.route(route="items/{id}/parts/{part?}", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def items(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "method": req.method,
        "route": dict(req.route_params),
        "query": dict(req.params),
        "body": req.get_body().decode(),
        "header": req.headers.get("x-test"),
    }
    return func.HttpResponse(
        json.dumps(body), status_code=201, mimetype="application/json", headers={"X-Echo": "yes"}
    )


@app.route(route="go", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def go(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=302, headers={"Location": "https://example.com/target?a=1"})


@app.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.queue_output(arg_name="out", queue_name="sample-out", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode())
    return func.HttpResponse("queued", status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="sample-work", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    started = time.time()
    payload = json.loads(msg.get_body())
    time.sleep(payload.get("sleep", 0))
    record("work", id=msg.id, dequeue=msg.dequeue_count, payload=payload, start=started, end=time.time())


@app.queue_trigger(arg_name="msg", queue_name="sample-fail", connection="AzureWebJobsStorage")
def fail(msg: func.QueueMessage) -> None:
    record("fail", id=msg.id, dequeue=msg.dequeue_count)
    raise RuntimeError("this function always fails")


@app.queue_trigger(arg_name="msg", queue_name="sample-out", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="relay", queue_name="sample-relayed", connection="AzureWebJobsStorage")
def relay(msg: func.QueueMessage, relay: func.Out[str]) -> None:
    record("relay", body=msg.get_body().decode())
    relay.set("relayed:" + msg.get_body().decode())


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_SCHEDULE%", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    record("tick", past_due=timer.past_due)
