"""Local test infrastructure: a real control plane on loopback plus simulations.

Holds the tool lookup (kubectl, helm, etcd, kube-apiserver, kube-controller-manager),
the LocalCluster that runs etcd + kube-apiserver + kube-controller-manager on
127.0.0.1, a simulated kubelet and a simulated OpenKruise CloneSet controller. It
is used by the tests and the demo only; the webhook and controller must not
import it, and nothing here may dial outside 127.0.0.0/8.
"""
