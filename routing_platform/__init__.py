"""The routing platform: routes every LLM call to the cheapest model that answers it well."""
