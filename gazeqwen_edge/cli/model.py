"""Model commands: demo, convert-checkpoint (filled in by the model work)."""
