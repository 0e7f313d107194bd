"""Packaging: what Dataflow / Vertex workers install to import the module files."""

from setuptools import find_packages, setup

setup(
    name="so-tagger",
    version="0.1.0",
    description="StackOverflow title tagger built as a TFX pipeline",
    packages=find_packages(
        include=["contract", "modules", "modules.*", "pipeline", "pipeline.*", "ingest"]
    ),
    package_data={"": ["*.pbtxt"]},
    python_requires=">=3.10,<3.14",
    # Versions come from requirements.lock; workers run the same environment image.
    install_requires=[],
)
