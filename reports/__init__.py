"""Jinja templates for reports and customer messages, and their renderers."""
