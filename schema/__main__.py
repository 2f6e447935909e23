"""``python -m schema > schema/schema.graphql`` regenerates the committed SDL."""

import sys

from schema import schema

sys.stdout.write(schema.as_str() + "\n")
