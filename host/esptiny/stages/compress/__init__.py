"""Compression methods: each module turns a Keras model into .tflite bytes."""
