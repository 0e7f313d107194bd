"""The tagging web app: HTTP API, web page and metrics, in front of TF Serving's REST API."""
