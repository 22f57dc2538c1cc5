"""Downstream training on annotations: the paper's recipe, with a configurable backbone."""
