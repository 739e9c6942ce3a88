"""The companion controller: revisions, workloads and rollout batches.

Holds the pure rollout state machine (the machine package: values, facts, effects and
the transition table), the pure translations between API objects and its values (views),
the object lifecycle's rules (inventory: what a spec implies, what goes and when) and the
status report (report); then the thin I/O layers: read-decide-act reconcilers (reconcile,
with the Application pass in applications and its guarded writes in guards) and the watch
loop with leader election (loop); the API client is
webhook.kube.client. Pure modules here must not import the I/O ones.
"""
