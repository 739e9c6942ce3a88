"""The one seam to the Kubernetes API: credentials, reads, writes and list-and-watch.

Holds the credential loader and reader (reader), the controller's read-write client
(client) and the one list-then-watch engine (watching) that the webhook's state cache, the
controller and the local simulators share. It may import only webhook.core and must not
hold decisions.
"""
