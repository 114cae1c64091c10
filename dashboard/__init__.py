"""The dashboard inside the Django admin: Plotly charts over selectors; nothing imports it."""
