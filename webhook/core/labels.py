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
# On the metadata of every object the product renders (never on pod templates: a new pod
# label would re-roll every workload). The controller deletes only objects that carry it
# AND name the Application as controller by UID: vela-core uses the app.oam.dev labels too.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "oam-rollout"

# The mutating webhook records the resolved revision of every component here,
# as a JSON object {component name: revision name}; the controller reads it.
ANNOTATION_REVISIONS = "rollout.oam.dev/component-revisions"
# The mutating webhook records who last wrote an Application's spec here, as JSON
# {"username": ..., "groups": [...]} from the AdmissionReview's userInfo; a value a user
# supplies is overwritten, never trusted. With --impersonate the controller writes the
# Application's workloads, Services and Rollouts as this identity (webhook.core.requester).
ANNOTATION_REQUESTER = "rollout.oam.dev/requester"

ROLLOUT_TRAIT = "rollout"
ROLLOUT_WORKLOAD_TYPES = ("webservice", "worker", "cloneset")
# Component types whose one workload is updated in place (a CloneSet re-templates its pods,
# held back by its partition) rather than replaced by one workload per revision.
IN_PLACE_TYPES = ("cloneset",)
# The traits beside rollout (KubeVela's names): scaler sets a plain component's replicas;
# labels and annotations land on the workload and its pods, so they are part of the
# component's revision (POD_TRAITS).
SCALER_TRAIT = "scaler"
LABELS_TRAIT = "labels"
ANNOTATIONS_TRAIT = "annotations"
POD_TRAITS = (LABELS_TRAIT, ANNOTATIONS_TRAIT)
# Label and annotation keys that users may not set (properties or traits): the product's
# own prefixes, and the keys it puts on workloads, pods and selectors itself.
RESERVED_KEY_PREFIXES = ("app.oam.dev/", "rollout.oam.dev/")
RESERVED_KEYS = (LABEL_WORKLOAD_TYPE, LABEL_CONTROLLER_COMPONENT, LABEL_MANAGED_BY)

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
