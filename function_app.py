"""Azure Functions entry point: creates the app and registers the blueprints. Nothing else."""

import azure.functions as func

from functions import health

app = func.FunctionApp()
app.register_functions(health.bp)
