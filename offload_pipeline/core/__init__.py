"""The offload engine: plan a window, read it, write it, commit it with its watermark.

Plain Python over pyarrow and pyiceberg; nothing here imports dagster.
"""
