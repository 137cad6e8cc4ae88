"""Monitors: the same judges on live traffic, window by window, with tested alerts."""
