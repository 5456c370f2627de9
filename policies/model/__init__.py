"""The pack's normalized view of resources: equivalent shapes become one model, rules read the model.

Each module turns every shape the engine can send for one concern into one typed model:
`workloads` (every pod-carrying Kubernetes kind, patches and ephemeral containers included),
`exposure` (Services and Ingresses), `iam` (policy documents, attachments, role inline and managed
policies), `network` (security-group and firewall ingress, inline or standalone) and `cidr` (what a
set of source ranges admits). `subject` holds one resource with its models, computed once.
"""
