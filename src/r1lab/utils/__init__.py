"""Run plumbing: paths, logging, progress, checkpoint I/O."""
