import argparse
from pathlib import Path

from devstack.dataverse_emulator.app import Dataverse
from devstack.emulator_kit import serve

parser = argparse.ArgumentParser(description="Dataverse Web API v9.2 emulator")
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--https-port", type=int, help="also serve HTTPS here (certificate of the devstack CA)")
parser.add_argument("--authority", required=True, help="https://127.0.0.1:<port>/<tenant>")
parser.add_argument("--ca", required=True, help="CA bundle that signed the authority's certificate")
parser.add_argument("--cert", help="TLS certificate chain (default: server.pem next to --ca)")
parser.add_argument("--key", help="TLS private key (default: server-key.pem next to --ca)")
parser.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
args = parser.parse_args()
here = Path(args.ca).parent
https = None
if args.https_port:
    https = (args.https_port, args.cert or str(here / "server.pem"), args.key or str(here / "server-key.pem"))
app = Dataverse(args.port, args.authority, args.ca, args.db, https_port=args.https_port)
serve(app.app(), args.port, https)
