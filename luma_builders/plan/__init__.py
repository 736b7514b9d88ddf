"""The plan: which items each record pairs and which labels it carries (`planning`), and the pure selection kernels
it uses: diversity sampling, label switching, conflicts (`selection`)."""
