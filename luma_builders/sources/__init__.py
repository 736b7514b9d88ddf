"""Sources: where each LUMA file comes from (`locations`), getting it over the network (`transfer`), the readers of
its formats (`readers`, `safe_pickle`), and `luma download` (`download`)."""
