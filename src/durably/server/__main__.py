"""``python -m durably.server``: the same as ``durably server``."""

import argparse
import sys

from durably.server.cli import add_arguments, run

parser = argparse.ArgumentParser(prog="durably server", description="serve the HTTP API")
add_arguments(parser)
sys.exit(run(parser.parse_args()))
