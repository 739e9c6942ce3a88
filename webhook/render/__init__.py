"""The rendering pipeline: Jinja2 templates in, Kubernetes objects (dicts) out.

Holds the compiled template set (templates), the render memo (memo), the builders of what
templates get beyond a spec's own fields (context: labels, annotations, resolved batches)
and the Renderer that builds each template's context (renderer). It may import only
webhook.core and must not validate user input or talk to the API.
"""
