"""Calibration of served scores: measured (ECE, within-image AUC), fitted per class from a run
with gold labels, and the thresholds chosen on the calibrated scores."""
