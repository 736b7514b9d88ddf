"""Sample noise: pure per-record transforms (inputs + Generator -> output) for images (`image`), audio (`audio`)
and texts (`text`), put together per record by `sample_noise`; the noise banks' I/O apart (`banks`)."""
