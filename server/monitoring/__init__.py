"""Monitor adapters that touch the outside world: the alert webhook, the trend chart, the loop."""
