from spotless.domain import registry

# Services here emit events: every context's subscribers must be known first.
registry.import_jobs()
