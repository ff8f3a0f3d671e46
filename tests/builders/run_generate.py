"""Run ``svit-recipe generate`` in a child process (used by the kill -9 test)."""

import argparse
import sys

from svit_data.cli import generate

parser = argparse.ArgumentParser()
generate.add_arguments(parser)
sys.exit(generate.run(parser.parse_args(sys.argv[1:])))
