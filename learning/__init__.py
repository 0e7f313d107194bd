"""Continuous learning: accepted feedback becomes a data span, the pipeline retrains."""
