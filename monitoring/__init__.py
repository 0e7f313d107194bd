"""Drift and skew on live traffic: the training-side job that reads the request log in
windows and compares each with the training spans and with the window before it."""
