"""Well-known names: API groups, label and annotation keys, trait and state names.

Holds constants only, so that the webhook, the controller, the templates and the
chart agree on every name. It must not hold logic.
"""

from __future__ import annotations

APP_GROUP = "core.oam.dev"
APP_VERSION = "v1beta1"
APP_API_VERSION = f"{APP_GROUP}/{APP_VERSION}"
APP_KIND = "Application"
APP_PLURAL = "applications"

ROLLOUT_GROUP = "standard.oam.dev"
ROLLOUT_VERSION = "v1alpha1"
ROLLOUT_API_VERSION = f"{ROLLOUT_GROUP}/{ROLLOUT_VERSION}"
ROLLOUT_KIND = "Rollout"
ROLLOUT_PLURAL = "rollouts"

CLONESET_GROUP = "apps.kruise.io"
CLONESET_VERSION = "v1alpha1"
CLONESET_API_VERSION = f"{CLONESET_GROUP}/{CLONESET_VERSION}"
CLONESET_KIND = "CloneSet"
CLONESET_PLURAL = "clonesets"

# Labels (as KubeVela sets them, so `kubectl get ... -l` in the spec works).
LABEL_CONTROLLER_COMPONENT = "controller.oam.dev/component"
LABEL_COMPONENT = "app.oam.dev/component"
LABEL_APP_NAME = "app.oam.dev/name"
LABEL_REVISION = "app.oam.dev/revision"
LABEL_REVISION_HASH = "app.oam.dev/component-revision-hash"
LABEL_WORKLOAD_TYPE = "workload.oam.dev/type"

# The mutating webhook records the resolved revision of every component here,
# as a JSON object {component name: revision name}; the controller reads it.
ANNOTATION_REVISIONS = "rollout.oam.dev/component-revisions"

ROLLOUT_TRAIT = "rollout"
ROLLOUT_WORKLOAD_TYPES = ("webservice", "worker", "cloneset")

# Rolling states (KubeVela's names) and batch states.
VERIFYING_SPEC = "verifyingSpec"
INITIALIZING = "initializing"
ROLLING_IN_BATCHES = "rollingInBatches"
FINALISING = "finalising"
ROLLOUT_SUCCEED = "rolloutSucceed"
ROLLOUT_FAILED = "rolloutFailed"
ABANDONING = "abandoning"

BATCH_INITIALIZING = "batchInitializing"
BATCH_IN_ROLLING = "batchInRolling"
BATCH_VERIFYING = "batchVerifying"
BATCH_FINALIZING = "batchFinalizing"
BATCH_READY = "batchReady"
