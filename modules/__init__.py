"""TFX module files (Transform's preprocessing_fn, Trainer's run_fn) and what they share."""
