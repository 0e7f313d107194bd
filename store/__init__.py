"""The state both sides share, and nothing else: the database (feedback, review, sources,
retrain batches, live quality, tokens, releases) and whole-file object storage.

The online side (the app, the rollout controller) and the training side (the learning
worker) both import it; it imports neither, only `contract/`. Each module owns its
tables' SQL; the others use it through its functions:

    database.py      connection, SQLite and PostgreSQL, transactions, migrations, settings
    samples.py       what a feedback sample is: fields, statuses, normalisation
    feedback.py      storing feedback; sources and withdrawing one
    review.py        unknown tags, the review queue and its decisions
    retrain.py       the retrain-batch queue and how each batch ended
    live_quality.py  each served version's decisions against people's corrections
    tokens.py        access tokens' rows
    releases.py      release rows: stable, canary, each version's status, events
    vocabulary.py    the tags the model knows (the curated schema)
    objects.py       whole files under a local directory or a gs:// prefix
"""
