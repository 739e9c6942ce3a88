"""The companion controller: revisions, workloads and rollout batches.

Holds the pure rollout state machine (batches), the read-decide-act reconcilers
(reconcile), the API writes and reads they need (cluster) and the watch loop with
leader election (loop). Pure modules here must not import the I/O ones.
"""
