"""Azure Functions entry point: starts telemetry, creates the app and registers the blueprints."""

import azure.functions as func

from shared import telemetry

telemetry.configure()  # first: httpx clients created from here on are instrumented

from functions import crm_ribbon, health, http_api, portal, retention, scheduler, worker  # noqa: E402
from functions.http_util import context  # noqa: E402

telemetry.observe_freshness(context)
app = func.FunctionApp()
for blueprint in (health.bp, http_api.bp, crm_ribbon.bp, portal.bp, worker.bp, scheduler.bp, retention.bp):
    app.register_functions(blueprint)
