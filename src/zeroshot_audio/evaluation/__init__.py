"""Evaluation: metrics, event detection scoring, the protocol and its report (the protocol needs [train])."""
