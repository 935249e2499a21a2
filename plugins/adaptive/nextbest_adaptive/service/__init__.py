"""The plugin's service: counts kept in plugin documents, the decision-time model, the logs."""
