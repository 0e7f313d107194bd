"""Turns labelled TSV files into versioned data spans that ExampleGen reads."""
