"""The Kubeflow pipeline: compile, run embedded (kfp.local) or submit to a cluster."""
