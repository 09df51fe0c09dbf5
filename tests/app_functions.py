"""The app's functions, listed once per test process: ``FunctionApp.get_functions()`` may be called only
once per app object (a second call refuses the same function names)."""

from functools import cache

import function_app


@cache
def functions() -> tuple:
    return tuple(function_app.app.get_functions())
