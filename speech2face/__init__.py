"""Speech2Face engine: voice clip in, face image and face feature out."""

__version__ = "0.1.0"
