"""Engines: the only place that imports generation code, vLLM or torch.distributed."""
