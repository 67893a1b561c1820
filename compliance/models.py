"""Compliance controls, results and reports (issue: compliance module). The audit trail is the `audit` app."""
