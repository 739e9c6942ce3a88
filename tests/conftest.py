"""Test-session wiring: fixtures live in tests/fixtures/<subsystem>.py and are re-exported here.

Cluster fixtures start one real control plane per session (lazily, only when a test asks).
"""

from tests.fixtures.cluster import (  # noqa: F401
    api_client,
    bypassed_namespace,
    cluster,
    helm,
    kubectl,
    namespace,
    pytest_terminal_summary,
)
from tests.fixtures.controller import controller_process  # noqa: F401
from tests.fixtures.realnode import (  # noqa: F401
    project_image,
    real_node_workloads,
    real_nodes,
    scheduled_cluster,
)
from tests.fixtures.webhook import webhook_server  # noqa: F401
