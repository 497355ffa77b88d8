"""Training: torch models, losses, fitting, recipes and calibration (needs the [train] extra)."""
