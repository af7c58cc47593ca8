"""Training stage: the torchrun trainer, its batches and configs, its CLI and KFP steps."""
