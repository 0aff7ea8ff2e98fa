"""The streaming session: ingest a source, prefill its video into the LLM's KV cache as it arrives, answer questions
on top of it (stream.py: the cache; session.py: threads, buffers, questions and sinks)."""
