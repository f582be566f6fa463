"""Online models (River), their features, labels and store, and the patient-behaviour simulator.

The models are per worker: each Faust worker learns from the accounts of the partitions it owns and
checkpoints to its own data directory (`models.suite` explains what that means for a scaled-out
deployment).
"""
