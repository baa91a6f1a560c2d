"""insights-runner: a declarative, Ansible-style report runner for Insights for Microsoft 365."""

__version__ = "0.1.0"
