"""One file per stage of the R1 method; each is a visible loop over the shared pieces."""
