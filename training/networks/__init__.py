"""The networks: voice encoder, face decoder, face encoders (small CNN, VGG-Face import)."""
