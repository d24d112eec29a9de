"""Capacity forecasting: seasonal trend forecasts with intervals, days until full, backtests."""
