"""KubeRay on GKE: the manifests in ``clusters/``, rendered from the configs and validated offline.

``python -m mlray.kuberay render --out clusters/`` writes them;
``python -m mlray.kuberay validate clusters/`` checks them against the KubeRay
and Prometheus-operator CRDs, the Kubernetes schemas and mlray's own rules.
(The local development cluster is ``mlray.cluster``.)
"""
