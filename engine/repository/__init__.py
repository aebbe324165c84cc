"""The cpu Triton repository: config messages, the writer, staging, tuning."""
