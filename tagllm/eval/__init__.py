"""Annotation quality against human labels: OP/OR/OF1, CP/CR/CF1, mAP."""
