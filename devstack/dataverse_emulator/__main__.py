import argparse

from devstack.dataverse_emulator.app import Dataverse
from devstack.emulator_kit import serve

parser = argparse.ArgumentParser(description="Dataverse Web API v9.2 emulator")
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--authority", required=True, help="https://127.0.0.1:<port>/<tenant>")
parser.add_argument("--ca", required=True, help="CA bundle that signed the authority's certificate")
parser.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
args = parser.parse_args()
serve(Dataverse(args.port, args.authority, args.ca, args.db).app(), args.port)
