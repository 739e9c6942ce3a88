"""The pure core: field paths, errors, names, the typed model, revisions, rules, validation.

Holds every decision about an Application that needs no cluster: parsing into frozen values
(model), reading API object shapes (objects), rollout arithmetic (rules), revision naming
(revisions) and the validation rules (validation, properties). It must not do I/O and must
not import any other part of the package.
"""
