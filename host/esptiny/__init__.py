"""esptiny: from a Keras model to measured results on an ESP32."""
__version__ = "0.1.0"
