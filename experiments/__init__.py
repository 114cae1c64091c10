"""Experiments: the A/B machinery (experiments, arms, phases, assignments) and the record
of every routed call, with the services, selectors, admin and RQ jobs around them."""
