"""Azure Functions entry point: creates the app and registers the blueprints. Nothing else."""

import azure.functions as func

from functions import crm_ribbon, health, http_api, portal, scheduler, worker

app = func.FunctionApp()
for blueprint in (health.bp, http_api.bp, crm_ribbon.bp, portal.bp, worker.bp, scheduler.bp):
    app.register_functions(blueprint)
