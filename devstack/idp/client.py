"""An msal HTTP client that trusts exactly the devstack CA (for devstack and tests only).

``verify=`` alone is not enough: requests lets REQUESTS_CA_BUNDLE override a session's ``verify``,
so the session ignores the environment altogether.
"""

from __future__ import annotations

import requests


def msal_http_client(ca_path: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_path)
    return session
