"""Gradual, reversible releases: a new version answers as `canary` (or in the shadow of
`stable`), is promoted stage by stage while its checks hold, and is rolled back and
rejected when one fails. state.py is what the app reads; controller.py decides."""
