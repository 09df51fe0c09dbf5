import argparse

from devstack.bc_emulator.app import BusinessCentral
from devstack.emulator_kit import serve

parser = argparse.ArgumentParser(description="Business Central API v2.0 emulator")
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--authority", required=True, help="https://127.0.0.1:<port>/<tenant>")
parser.add_argument("--ca", required=True, help="CA bundle that signed the authority's certificate")
parser.add_argument("--tenant", required=True)
parser.add_argument("--environment", default="production")
parser.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
args = parser.parse_args()
app = BusinessCentral(args.port, args.authority, args.ca, args.tenant, args.environment, args.db)
serve(app.app(), args.port)
