"""Tasks, templates and loaders: everything that turns a source into `Example`s and prompts."""
