"""The routing engine: pure Python (no Django). Classifier, catalog and cost, confidence,
router and cascade, providers, council, executor."""
