"""The TFX pipeline definition: create_pipeline() and the components it adds to TFX's."""
