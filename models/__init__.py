"""Online models (River), their features, labels and store, and the patient-behaviour simulator."""
