"""The admission webhook: AdmissionReview in, AdmissionReview out.

Holds the review wire shapes (reviews), the pure judge shared with the `validate` command
(judge), the watch-fed observed-state cache (statecache), TLS and certificates, and the
thin HTTP server (server/). It must not import the controller.
"""
