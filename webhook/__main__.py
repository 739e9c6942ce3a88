"""``python -m webhook`` runs the oam-rollout CLI."""

import sys

from webhook.cli import main

sys.exit(main())
