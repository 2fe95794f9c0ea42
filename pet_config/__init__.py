"""The pipeline configuration: its schema and checks (``schema``) and YAML loading with overrides (``loading``)."""
