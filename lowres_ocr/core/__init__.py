"""numpy/PIL-only helpers every stage shares and the Triton python models vendor: charset, image decoding, input geometry, decoding."""
