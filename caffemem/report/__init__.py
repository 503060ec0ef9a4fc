"""Renderers: turning analysis results into text, tables, JSON, CSV and Caffe's own log lines."""
