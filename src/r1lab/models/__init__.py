"""Models: the embedded tiny model toolchain and loaders for any Hugging Face causal LM."""
