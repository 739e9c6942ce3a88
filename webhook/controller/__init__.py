"""The companion controller: revisions, workloads and rollout batches.

Holds the pure rollout state machine (batches), the pure translations between API
objects and its values (views) and the status report (report); then the thin I/O
layers: the API client (api), read-decide-act reconcilers (reconcile) and the watch
loop with leader election (loop). Pure modules here must not import the I/O ones.
"""
