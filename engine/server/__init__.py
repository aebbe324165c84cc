"""The tritonserver launcher, its supervisor, and leftover cleanup."""
