{{- /*
controller.namespaceSelector (matchLabels / matchExpressions, as webhook.namespaceSelector)
written as the label selector string `oam-rollout controller --namespace-selector` takes:
matchLabels k: v -> k=v; In -> k in (a,b); NotIn -> k notin (a,b); Exists -> k;
DoesNotExist -> !k; all ANDed. Empty: every namespace (no flag, no namespace RBAC).
*/ -}}
{{- define "oam-rollout.labelSelectorString" -}}
{{- $terms := list -}}
{{- range $key, $value := .matchLabels -}}
{{- $terms = append $terms (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- range .matchExpressions -}}
{{- if eq .operator "In" -}}
{{- $terms = append $terms (printf "%s in (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "NotIn" -}}
{{- $terms = append $terms (printf "%s notin (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "Exists" -}}
{{- $terms = append $terms .key -}}
{{- else -}}
{{- $terms = append $terms (printf "!%s" .key) -}}
{{- end -}}
{{- end -}}
{{- join "," $terms -}}
{{- end -}}

{{- define "oam-rollout.controllerNamespaceSelector" -}}
{{- include "oam-rollout.labelSelectorString" (.Values.controller.namespaceSelector | default dict) -}}
{{- end -}}
