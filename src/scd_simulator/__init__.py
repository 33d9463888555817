"""A fleet of fake SCD endpoints on 127.0.0.1, scripted per endpoint and over time."""
